"""One name per setting: no two modules read the same environment variable for different things.

Every ``CRYPTO_ML_*`` variable the code reads is found by walking the source (``os.environ.get``,
``os.getenv``, ``environ[...]``, ``env.get(...)``, ``"X" in os.environ``, with the name given
literally or through a module-level constant). Each variable has one owner module; a variable
read by a second module must be listed in :data:`SAME_MEANING` with the one meaning they share.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "crypto_ml", ROOT / "dags", ROOT / "plugins"]

#: Variables more than one module reads, each with the single meaning all of them use.
SAME_MEANING = {
    "CRYPTO_ML_DATABASE_URL": "the project database URL (storage.db resolves it; the web view "
    "names it in its error message)",
    "CRYPTO_ML_HOME": "Crypto-ML's working folder (config.home_dir; the Celery stack passes the "
    "caller's on to its processes)",
}
_READERS = (
    "environ.get",
    "getenv",
    "env.get",
    "environ.pop",
    "environ.setdefault",
    "environ.__getitem__",
    # the typed getters of crypto_ml.settings
    "env_str",
    "env_int",
    "env_float",
    "env_bool",
    "env_choice",
    "env_url",
)


def _reads(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    consts = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for t in node.targets
        if isinstance(t, ast.Name)
    }

    def name(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return consts.get(node.id)
        return None

    found = set()
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func).endswith(_READERS):
            value = name(node.args[0])
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith(("environ", "env")):
            value = name(node.slice)
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.In, ast.NotIn))
            and ast.unparse(node.comparators[0]).endswith("environ")
        ):
            value = name(node.left)
        if value and value.startswith("CRYPTO_ML_"):
            found.add(value)
    return found


def _readers() -> dict[str, set[str]]:
    readers: dict[str, set[str]] = defaultdict(set)
    for base in SOURCES:
        for path in sorted(base.rglob("*.py")):
            for var in _reads(path):
                readers[var].add(str(path.relative_to(ROOT)))
    return readers


def test_no_two_modules_read_one_variable_for_different_things():
    readers = _readers()
    assert len(readers) >= 10, sorted(readers)  # the scan finds the settings at all
    shared = {var: sorted(mods) for var, mods in readers.items() if len(mods) > 1}
    unexplained = {var: mods for var, mods in shared.items() if var not in SAME_MEANING}
    assert not unexplained, f"read by several modules; give each meaning its own name: {unexplained}"


def test_the_engine_broker_and_the_trading_settings_have_separate_names():
    readers = _readers()
    assert readers["CRYPTO_ML_BROKER_URL"] == {"crypto_ml/settings/engine.py"}
    trading = {var for var, mods in readers.items() if "crypto_ml/trading/brokers.py" in mods}
    assert {
        "CRYPTO_ML_TRADING_BROKER",
        "CRYPTO_ML_TRADING_URL",
        "CRYPTO_ML_TRADING_DRY_RUN",
        "CRYPTO_ML_TRADING_TOKEN",
        "CRYPTO_ML_TRADING_LIVE",
    } <= trading
    # The old names are only read to refuse them with their new name (see broker_from_config).
    from crypto_ml.trading.brokers import RENAMED_ENV

    assert all(new.startswith("CRYPTO_ML_TRADING_") for new in RENAMED_ENV.values())
    assert trading - set(RENAMED_ENV) == {v for v in trading if v.startswith("CRYPTO_ML_TRADING_")}
    assert readers["CRYPTO_ML_MODEL_STORE_URL"] == {"crypto_ml/storage/model_store.py"}


def test_the_scan_sees_each_way_of_reading(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import os\nNAME = 'CRYPTO_ML_A'\n"
        "os.environ.get(NAME); os.getenv('CRYPTO_ML_B'); os.environ['CRYPTO_ML_C']\n"
        "env = {}\nenv.get('CRYPTO_ML_D'); 'CRYPTO_ML_E' in os.environ; print('CRYPTO_ML_F')\n"
    )
    assert _reads(src) == {"CRYPTO_ML_A", "CRYPTO_ML_B", "CRYPTO_ML_C", "CRYPTO_ML_D", "CRYPTO_ML_E"}

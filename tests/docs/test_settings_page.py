"""The settings page lists every ``CRYPTO_ML_*`` variable the code reads, each with its default.

The code is grepped (``crypto_ml/``, ``dags/``, ``plugins/``, every text file) for
``CRYPTO_ML_[A-Z0-9_]+``: a name in a docstring or an error message counts as read too, so the
page errs on the side of listing. Not variables: a prefix (``CRYPTO_ML_TRADING_``, ends in ``_``)
and a Connection's variable (``AIRFLOW_CONN_CRYPTO_ML_DB``: the name is part of a longer one).
A variable is listed when it opens a row of a table on ``docs/settings.md`` whose default and
meaning cells are filled. The other way round, a listed name must occur somewhere in the repository
outside the docs, so the page never keeps a setting that is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "settings.md"
CODE = [ROOT / "crypto_ml", ROOT / "dags", ROOT / "plugins"]
#: Where a setting may be read besides the code: the deployment files, the scripts, the tests.
ELSEWHERE = [
    ROOT / "tests",
    ROOT / "scripts",
    ROOT / "helm",
    ROOT / "benchmarks",
    ROOT / ".ci",
    ROOT / "docker-compose.yaml",
    ROOT / "Dockerfile",
    ROOT / "airflow.cfg",
]
NAME = re.compile(r"(?<![A-Za-z0-9_])CRYPTO_ML_[A-Z0-9_]+")
ROW = re.compile(r"^\|\s*`(CRYPTO_ML_[A-Z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|", re.M)


def _texts(paths: list[Path]):
    for base in paths:
        for path in sorted([base] if base.is_file() else base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".gz", ".png", ".pyc"):
                continue
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue


def names_in(text: str) -> set[str]:
    """The ``CRYPTO_ML_*`` variable names in ``text`` (no prefixes, no Connection variables)."""
    return {m for m in NAME.findall(text) if not m.endswith("_")}


def code_names() -> dict[str, str]:
    """Each variable the code names -> the first file that names it."""
    found: dict[str, str] = {}
    for path, text in _texts(CODE):
        for name in names_in(text):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def listed() -> dict[str, tuple[str, str]]:
    """The variables the settings page lists -> (default, meaning)."""
    return {m[0]: (m[1].strip(), m[2].strip()) for m in ROW.findall(PAGE.read_text())}


def test_every_variable_the_code_reads_is_on_the_settings_page_with_its_default():
    code, page = code_names(), listed()
    assert len(code) >= 30, sorted(code)  # the grep finds the settings at all
    missing = {name: where for name, where in sorted(code.items()) if name not in page}
    assert not missing, (
        "read by the code but not on docs/settings.md (add a row `| `NAME` | default | "
        f"meaning |`): {missing}"
    )
    unfilled = sorted(name for name, (default, meaning) in page.items() if not default or not meaning)
    assert not unfilled, f"listed on docs/settings.md without a default or a meaning: {unfilled}"
    print(f"{len(code)} CRYPTO_ML_* variables named by the code; {len(page)} on the settings page")


def test_every_variable_on_the_page_exists_in_the_repository():
    known = set(code_names())
    for _, text in _texts(ELSEWHERE):
        known |= names_in(text)
    stale = sorted(set(listed()) - known)
    assert not stale, f"on docs/settings.md but named nowhere in the repository: {stale}"


def test_the_grep_sees_names_and_skips_prefixes_and_connection_variables():
    text = (
        'os.environ.get("CRYPTO_ML_A"); env_int("CRYPTO_ML_B_2", 0); "${CRYPTO_ML_C:-1}"\n'
        "every CRYPTO_ML_TRADING_* setting; ``CRYPTO_ML_...``; AIRFLOW_CONN_CRYPTO_ML_DB=postgres://"
    )
    assert names_in(text) == {"CRYPTO_ML_A", "CRYPTO_ML_B_2", "CRYPTO_ML_C"}
    rows = ROW.findall("| `CRYPTO_ML_A` | `1` | on |\n| `CRYPTO_ML_B` |  | no default |\n")
    assert [(n, d.strip(), m.strip()) for n, d, m in rows] == [
        ("CRYPTO_ML_A", "`1`", "on"),
        ("CRYPTO_ML_B", "", "no default"),
    ]

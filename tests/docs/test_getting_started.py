""" "Getting started"'s commands are the ones the test suite runs or names.

Every command of a ``bash`` block of ``docs/getting-started.md`` must be one of:

- a project script the suite runs: ``bash scripts/main.sh [options]`` is run here (with
  ``--help``: the script itself, its install check and environment, then ``crypto-ml pipeline``'s
  parser), and each option the page gives must be one that command takes;
- a command a test or CI names verbatim (``bash scripts/test.sh`` is what ``.ci/run`` runs,
  ``source scripts/env.sh`` what ``tests/test_shell.py`` sources);
- ``airflow dags trigger DAG [--conf JSON]`` for a DAG and conf that a test triggers: through
  ``airflow dags trigger`` itself, the REST API (``client.trigger``) or ``dag.test()``
  (``run_dag``). Confs compare without the DAG's defaults (model ``naive``, horizon 10), and a
  value a test computes (a variable: two coins instead of all) does not make its trigger another
  command.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from crypto_ml.pipeline.catalog import DEFAULT_MODEL
from crypto_ml.pipeline.params import DEFAULT_HORIZON

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
TESTS = ROOT / "tests"
#: Conf values that are the DAG's defaults: a trigger with or without them is the same run.
DEFAULTS = {"model": DEFAULT_MODEL, "horizon": DEFAULT_HORIZON}
_UNKNOWN = object()


def page_commands(text: str | None = None) -> list[str]:
    """The commands of the page's ``bash`` blocks, comments and continuations resolved."""
    text = PAGE.read_text() if text is None else text
    commands, block, inside = [], [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if inside:
                commands += _commands("\n".join(block))
                block, inside = [], False
            elif line.strip() == "```bash":
                inside = True
            continue
        if inside:
            block.append(line)
    return commands


def _commands(block: str) -> list[str]:
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words))
    return out


# -- what the tests trigger -------------------------------------------------------------------------
def _value(node: ast.AST, consts: dict[str, object]):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id, _UNKNOWN)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_value(e, consts) for e in node.elts]
        return _UNKNOWN if _UNKNOWN in items else items
    return _UNKNOWN


def _conf(node: ast.AST | None, consts: dict[str, object]) -> dict | None:
    """A dict literal's keys with the values the test spells out (computed ones left out)."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return {}
    if not isinstance(node, ast.Dict):
        return None
    conf = {}
    for key, value in zip(node.keys, node.values):
        if isinstance(key, ast.Constant):
            v = _value(value, consts)
            if v is not _UNKNOWN:
                conf[key.value] = v
    return conf


def _argv_trigger(args: list, consts: dict[str, object]) -> tuple[str, dict] | None:
    """``[..., "dags", "trigger", DAG, "--conf", JSON, ...]`` -> (DAG, conf)."""
    words = [_value(a, consts) for a in args]
    for i in range(len(words) - 2):
        if words[i] == "dags" and words[i + 1] == "trigger" and isinstance(words[i + 2], str):
            conf = {}
            if "--conf" in words[i + 3 :]:
                raw = words[words.index("--conf", i + 3) + 1]
                if not isinstance(raw, str):
                    return None
                conf = json.loads(raw)
            return words[i + 2], conf
    return None


def triggers_in(path: Path) -> set[tuple[str, str]]:
    """(dag id, conf as JSON, defaults left out) of every trigger the test module makes."""
    tree = ast.parse(path.read_text())
    consts = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    found = set()
    for node in ast.walk(tree):
        hit = None
        if isinstance(node, (ast.List, ast.Tuple)):
            hit = _argv_trigger(node.elts, consts)
        elif isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            hit = _argv_trigger(node.args, consts)
            if func.endswith("run_dag") and len(node.args) >= 3:  # dag.test(run_conf=conf)
                dag, conf = _value(node.args[1], consts), _conf(node.args[2], consts)
                hit = (dag, conf) if isinstance(dag, str) and conf is not None else hit
            elif func.endswith(".trigger") and node.args:  # the REST API's POST dagRuns
                dag = _value(node.args[0], consts)
                conf = _conf(node.args[2] if len(node.args) > 2 else None, consts)
                hit = (dag, conf) if isinstance(dag, str) and conf is not None else hit
        if hit:
            found.add(_key(*hit))
    return found


def _key(dag: str, conf: dict) -> tuple[str, str]:
    return dag, json.dumps({k: v for k, v in conf.items() if DEFAULTS.get(k, _UNKNOWN) != v}, sort_keys=True)


def suite_triggers() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(TESTS.rglob("*.py")):
        if "docs" not in path.relative_to(TESTS).parts:
            found |= triggers_in(path)
    return found


def page_trigger(command: str) -> tuple[str, str]:
    words = shlex.split(command)
    assert words[:3] == ["airflow", "dags", "trigger"] and len(words) in (4, 6), command
    if len(words) == 6:
        assert words[4] == "--conf", command
    return _key(words[3], json.loads(words[5]) if len(words) == 6 else {})


# -- what the tests and CI name -------------------------------------------------------------------------
def named_by_the_suite(command: str) -> list[str]:
    """Files of the suite (tests/, .ci/run) that spell ``command`` out (``{ROOT}/`` prefixes dropped)."""
    files = [p for p in sorted(TESTS.rglob("*.py")) if "docs" not in p.relative_to(TESTS).parts]
    files.append(ROOT / ".ci" / "run")
    return [str(p.relative_to(ROOT)) for p in files if command in p.read_text().replace("{ROOT}/", "")]


def _main_sh_help() -> str:
    """``bash scripts/main.sh --help``'s output; skipped (failed in CI) when .venv is not installed
    as requirements.txt asks (the script would install it first)."""
    stamp = ROOT / ".venv" / ".crypto-ml-installed"
    want = hashlib.sha256(
        (ROOT / "requirements.txt").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()[:16]
    if not stamp.exists() or stamp.read_text().strip() != want:
        message = "the .venv is not up to date with requirements.txt: run bash scripts/install.sh"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "main.sh"), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_every_command_of_getting_started_is_one_the_suite_runs_or_names():
    commands = page_commands()
    triggers = suite_triggers()
    main_help = None
    unaccounted = []
    for command in commands:
        words = shlex.split(command)
        if words[:2] == ["bash", "scripts/main.sh"]:
            main_help = main_help or _main_sh_help()
            assert "usage: crypto-ml pipeline" in main_help, main_help
            unknown = [w for w in words[2:] if w.startswith("-") and w.split("=")[0] not in main_help]
            assert not unknown, f"{command}: crypto-ml pipeline takes no {unknown}"
        elif words[:3] == ["airflow", "dags", "trigger"]:
            if page_trigger(command) not in triggers:
                unaccounted.append(command)
        elif not named_by_the_suite(command):
            unaccounted.append(command)
    assert not unaccounted, (
        "docs/getting-started.md gives commands the test suite neither runs nor names: "
        f"{unaccounted}; trigger commands the tests make: {sorted(triggers)}"
    )
    # The page has what a newcomer needs: the two commands, the shell, a run, a coin run, another model.
    assert {"bash scripts/main.sh", "bash scripts/test.sh", "source scripts/env.sh"} <= set(commands)
    asked = {page_trigger(c) for c in commands if c.startswith("airflow dags trigger")}
    assert ("crypto_ml_master", "{}") in asked
    assert any(dag == "crypto_ml_coin" for dag, _ in asked)
    assert any(dag == "crypto_ml_master" and '"model"' in conf for dag, conf in asked)


def test_the_extraction_reads_blocks_comments_and_continuations():
    text = (
        "text\n```bash\nbash scripts/main.sh    # the main job\n\nairflow dags trigger x \\\n"
        '  --conf \'{"coin": "a"}\'\n```\n```text\nnot a command\n```\n'
    )
    assert page_commands(text) == ["bash scripts/main.sh", 'airflow dags trigger x --conf \'{"coin": "a"}\'']
    naive = 'airflow dags trigger crypto_ml_coin --conf \'{"coin": "a", "model": "naive"}\''
    assert page_trigger(naive) == ("crypto_ml_coin", '{"coin": "a"}')  # the default model left out
    drift = 'airflow dags trigger crypto_ml_master --conf \'{"model": "drift"}\''
    assert page_trigger(drift) == ("crypto_ml_master", '{"model": "drift"}')

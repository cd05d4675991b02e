"""The shell a user gets: ``source scripts/env.sh`` in an interactive bash sets the project's
environment and nothing else (no shell option changed, so a failing command afterwards does not
close the terminal); without an installed .venv it says what to run and leaves the shell as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _interactive(script: str, *, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``script`` typed into an interactive bash (``-i``: as a terminal runs it), no rc files."""
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-i"],
        input=script,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sourcing_env_sh_sets_the_environment_and_no_shell_option(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "CRYPTO_ML_ROOT")
    }
    out = _interactive(
        "set -o > before.txt\n"
        f"source {ROOT}/scripts/env.sh\n"
        "set -o > after.txt\n"
        "false\n"  # a failing command: the shell goes on
        "ls /no/such/dir\n"
        'echo "HOME=$AIRFLOW_HOME CFG=$AIRFLOW_CONFIG ROOT=$CRYPTO_ML_ROOT PWD=$PWD"\n'
        "command -v airflow crypto-ml\n"
        "echo still-here\n",
        cwd=tmp_path,
        env=env,
    )
    assert "still-here" in out.stdout, out.stderr[-2000:]
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()
    assert (f"HOME={ROOT}/.airflow CFG={ROOT}/airflow.cfg ROOT={ROOT} PWD={tmp_path}") in out.stdout
    assert f"{ROOT}/.venv/bin/airflow" in out.stdout and f"{ROOT}/.venv/bin/crypto-ml" in out.stdout


def test_env_sh_without_a_venv_says_what_to_run_and_leaves_the_shell(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "env.sh", checkout / "scripts" / "env.sh")
    env = {k: v for k, v in os.environ.items() if k not in ("AIRFLOW_HOME", "CRYPTO_ML_ROOT")}
    out = _interactive(
        f'source {checkout}/scripts/env.sh; echo "rc=$? home=${{AIRFLOW_HOME:-unset}}"\necho still-here\n',
        cwd=tmp_path,
        env=env,
    )
    assert (
        f"env.sh: error: {checkout}/.venv is not installed; run: bash {checkout}/scripts/install.sh"
        in out.stderr
    )
    assert "rc=1 home=unset" in out.stdout and "still-here" in out.stdout


def test_setup_sh_leaves_the_shell_options_alone_too(tmp_path):
    out = _interactive(
        "set -o > before.txt\n"
        f"source {ROOT}/scripts/setup.sh > /dev/null\n"
        "set -o > after.txt\nfalse\necho still-here\n",
        cwd=tmp_path,
    )
    assert "still-here" in out.stdout, out.stderr[-2000:]
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()

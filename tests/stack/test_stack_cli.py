"""``crypto-ml stack``: secrets only from the environment, never a default."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from crypto_ml.stack.celery import REQUIRED_SECRETS


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crypto_ml.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_stack_refuses_to_start_without_its_secrets(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    env["AIRFLOW_HOME"] = str(tmp_path)
    done = _cli("stack", "run", "--port", "1", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    for name in REQUIRED_SECRETS:
        assert name in done.stdout
    assert 'eval "$(crypto-ml stack secrets)"' in done.stdout


def test_stack_secrets_are_fresh_and_shell_quoted():
    env = dict(os.environ)
    first, second = (_cli("stack", "secrets", env=env).stdout for _ in range(2))
    names = re.findall(r"^export (\w+)=", first, flags=re.M)
    assert sorted(names) == sorted(REQUIRED_SECRETS)
    assert set(first.splitlines()).isdisjoint(second.splitlines())  # random every time
    # What the shell gets back is exactly what was printed (nothing mangled by quoting).
    shell = subprocess.run(
        ["bash", "-c", f'{first}\necho "$CRYPTO_ML_ADMIN_PASSWORD"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shell and shell in first

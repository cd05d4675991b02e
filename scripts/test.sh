#!/usr/bin/env bash
# The whole test suite: set up, then pytest. Extra arguments go to pytest.
#   bash scripts/test.sh           ruff (lint, format check), then everything (what CI runs: .ci/run)
#   bash scripts/test.sh --fast    ruff, then the unit lane only: no server, no subprocess, no Airflow stack
#                                  (-m "not integration", guarded: see tests/conftest.py)
# Needs PostgreSQL on 127.0.0.1:5432 (CRYPTO_ML_TEST_PG_URL to override); with CI=true a
# missing service fails the run instead of skipping those tests.
set -euo pipefail
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
bash "$(dirname "${BASH_SOURCE[0]}")/install.sh" --deploy
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CRYPTO_ML_ROOT"
# Lint first (a second), then the tests whatever it found; the run fails if either did.
echo "[test] ruff check and ruff format --check ([tool.ruff] in pyproject.toml)"
lint=0
ruff check --quiet . || { echo "test.sh: error: ruff check found the problems above (ruff check --fix . mends most)" >&2; lint=1; }
ruff format --check --quiet . || { echo "test.sh: error: the files above are not formatted (run: ruff format .)" >&2; lint=1; }
status=0
if [ "$fast" = 1 ]; then
    echo "[test] the unit lane (-m 'not integration')"
    CRYPTO_ML_UNIT_LANE=1 python -m pytest -m "not integration" -p no:randomly "$@" || status=$?
else
    bash scripts/browser-deps.sh  # Debian chromium + chromium-driver for the UI tests
    echo "[test] running pytest"
    python -m pytest "$@" || status=$?
fi
if [ "$status" = 0 ] && [ "$lint" = 1 ]; then
    echo "test.sh: error: the tests passed but ruff did not (see above)" >&2
    status=1
fi
exit "$status"

#!/usr/bin/env bash
# The whole test suite: set up, then pytest. Extra arguments go to pytest.
#   bash scripts/test.sh           everything (what CI runs: .ci/run)
#   bash scripts/test.sh --fast    the unit lane only: no server, no subprocess, no Airflow stack
#                                  (-m "not integration", guarded: see tests/conftest.py)
# Needs PostgreSQL on 127.0.0.1:5432 (CRYPTO_ML_TEST_PG_URL to override); with CI=true a
# missing service fails the run instead of skipping those tests.
set -euo pipefail
fast=0
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
bash "$(dirname "${BASH_SOURCE[0]}")/install.sh" --deploy
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CRYPTO_ML_ROOT"
if [ "$fast" = 1 ]; then
    echo "[test] the unit lane (-m 'not integration')"
    CRYPTO_ML_UNIT_LANE=1 exec python -m pytest -m "not integration" -p no:randomly "$@"
fi
bash scripts/browser-deps.sh  # Debian chromium + chromium-driver for the UI tests
echo "[test] running pytest"
exec python -m pytest "$@"

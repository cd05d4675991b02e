#!/usr/bin/env bash
# The whole test suite: set up, then pytest. Extra arguments go to pytest.
# Needs PostgreSQL on 127.0.0.1:5432 (CRYPTO_ML_TEST_PG_URL to override); with CI=true a
# missing service fails the run instead of skipping those tests.
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/install.sh" --deploy
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CRYPTO_ML_ROOT"
bash scripts/browser-deps.sh  # Debian chromium + chromium-driver for the UI tests
echo "[test] running pytest"
exec python -m pytest "$@"

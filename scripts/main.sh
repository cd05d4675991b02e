#!/usr/bin/env bash
# The main job on the embedded default (no external servers): set up, then run the whole pipeline
# once. Starts Airflow (LocalExecutor, SQLite metadata DB, all under .airflow/) and a prediction
# engine worker (Celery on an embedded SQLite broker), lets the scheduler run crypto_ml_master
# (poll the replayed history, fan out one crypto_ml_coin run per coin), prints every coin's
# forecast and decision, writes a plot, and stops everything. Extra arguments go to
# `crypto-ml pipeline` (e.g. --keep-running to explore the UI afterwards, --port 8081).
set -euo pipefail
bash "$(dirname "${BASH_SOURCE[0]}")/install.sh"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CRYPTO_ML_ROOT"
echo "[main] AIRFLOW_HOME=$AIRFLOW_HOME"
exec crypto-ml pipeline "$@"

#!/usr/bin/env bash
# The main job on the embedded default (no external servers): set up, then load, validate and
# store the bundled dataset in the project database under .airflow/, and print a per-coin summary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "[main] AIRFLOW_HOME=$AIRFLOW_HOME"
crypto-ml ingest "$@"

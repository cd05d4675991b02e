#!/usr/bin/env bash
set -euo pipefail
if [[ "$(id -u)" == "0" ]]; then
    chown -R redis:redis /data
    exec runuser -u redis -- "$@"
fi
exec "$@"

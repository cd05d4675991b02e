#!/usr/bin/env bash
# The official Airflow image's entrypoint rules, re-stated for the stand-in (written for the tests,
# not copied: see the official image's documentation, "Entrypoint"):
#   - the image must run with group 0 (a warning for uid 50000 with another group, else exit 1);
#   - umask 0002; an arbitrary uid gets a passwd entry with HOME=/home/airflow;
#   - unless CONNECTION_CHECK_MAX_COUNT=0, `airflow db check` must pass first (retried
#     CONNECTION_CHECK_MAX_COUNT times, CONNECTION_CHECK_SLEEP_TIME s apart), for every command;
#   - _AIRFLOW_DB_MIGRATE runs `airflow db migrate`;
#   - `bash ...` and `python ...` run as given; `airflow X ...` runs as `X ...`;
#   - anything else runs as `airflow <args>` (so `celery -A app worker` becomes
#     `airflow celery -A app worker`), scheduler and celery first waiting for the Celery broker.
AIRFLOW_COMMAND="${1:-}"
set -euo pipefail

if [[ $(id -g) != "0" ]]; then
    if [[ $(id -u) == "50000" ]]; then
        >&2 echo "WARNING! You should run the image with GID (Group ID) set to 0"
    else
        >&2 echo "ERROR! You should run the image with GID=0"; exit 1
    fi
fi
umask 0002
if ! whoami &>/dev/null; then
    [[ -w /etc/passwd ]] && echo "default:x:$(id -u):0:default user:${AIRFLOW_USER_HOME_DIR}:/sbin/nologin" >>/etc/passwd
    export HOME="${AIRFLOW_USER_HOME_DIR}"
fi

CONNECTION_CHECK_MAX_COUNT=${CONNECTION_CHECK_MAX_COUNT:=20}
CONNECTION_CHECK_SLEEP_TIME=${CONNECTION_CHECK_SLEEP_TIME:=3}

retry() {
    local countdown="${CONNECTION_CHECK_MAX_COUNT}" out
    until out=$("$@" 2>&1); do
        countdown=$((countdown - 1))
        if [[ ${countdown} -le 0 ]]; then
            echo "ERROR! Maximum number of retries (${CONNECTION_CHECK_MAX_COUNT}) reached."
            echo "Last check result:"; echo "$ $*"; echo "${out}"; exit 1
        fi
        echo -n "."; sleep "${CONNECTION_CHECK_SLEEP_TIME}"
    done
}
tcp_check() {  # tcp_check URL: the URL's host and port accept a connection
    python - "$1" <<'PY'
import socket, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
port = u.port or {"redis": 6379, "amqp": 5672, "postgres": 5432}.get(u.scheme.split("+")[0], 0)
socket.create_connection((u.hostname or "localhost", port), timeout=5).close()
PY
}

if [[ "${CONNECTION_CHECK_MAX_COUNT}" -gt 0 ]]; then
    retry airflow db check
fi
if [[ -n "${_AIRFLOW_DB_MIGRATE:-}" ]]; then
    airflow db migrate || true
fi

if [[ ${AIRFLOW_COMMAND} == "bash" ]]; then
    shift; exec /bin/bash "$@"
elif [[ ${AIRFLOW_COMMAND} == "python" ]]; then
    shift; exec python "$@"
fi
if [[ ${AIRFLOW_COMMAND} == "airflow" ]]; then
    AIRFLOW_COMMAND="${2:-}"; shift
fi
if [[ ${AIRFLOW_COMMAND} =~ ^(scheduler|celery)$ ]] && [[ "${CONNECTION_CHECK_MAX_COUNT}" -gt 0 ]]; then
    if [[ "$(airflow config get-value core executor)" == "CeleryExecutor" ]]; then
        retry tcp_check "$(airflow config get-value celery broker_url)"
    fi
fi
exec airflow "$@"

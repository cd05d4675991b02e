"""Cheap container health probes: ``python -m crypto_ml.stack.probe airflow-job|celery-worker ...``.

Airflow's own probes (``airflow jobs check``, ``celery --app airflow... inspect ping``) import
Airflow: 3-4 CPU-s each, 29-46 s on a 2-core host during a daily run, and Docker 20.10 does not kill
a probe that passed its timeout, so slow probes pile up. These answer the same questions with
SQLAlchemy or Celery alone (about 0.3 CPU-s):

- ``airflow-job JOB_TYPE``: a ``running`` job of that type (``SchedulerJob``, ``TriggererJob``,
  ``DagProcessorJob``) on this host heart-beat within ``--max-age`` seconds, in Airflow's metadata
  database (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), as ``airflow jobs check --hostname`` checks.
  The host is Airflow's own name for it (``[core] hostname_callable``:
  :func:`crypto_ml.settings.paths.hostname`).
- ``celery-worker airflow|engine``: this host's Celery worker answers a ping on its broker: an
  Airflow worker (``celery@<host>``, ``AIRFLOW__CELERY__BROKER_URL``) or a prediction-engine
  worker (``engine@<host>``, the engine's own settings: :class:`crypto_ml.settings.engine.EngineConfig`).

Exit 0 when healthy; otherwise exit 1 with one line on stderr saying what is wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys


class ProbeFailed(RuntimeError):
    """The probed component is not healthy (the message says why)."""


def airflow_job(job_type: str, max_age: float, hostname: str | None = None) -> str:
    """The age of the last heartbeat of this host's running ``job_type``; raises if too old."""
    from sqlalchemy import create_engine, text

    from crypto_ml.settings.paths import hostname as airflow_hostname

    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    if not url:
        raise ProbeFailed("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not set: no metadata database to read")
    host = hostname or airflow_hostname()
    engine = create_engine(url, connect_args=_connect_timeout(url), poolclass=_null_pool())
    try:
        with engine.connect() as conn:
            last = conn.execute(
                text(
                    "SELECT max(latest_heartbeat) FROM job "
                    "WHERE job_type = :job_type AND hostname = :hostname AND state = 'running'"
                ),
                {"job_type": job_type, "hostname": host},
            ).scalar()
    finally:
        engine.dispose()
    if last is None:
        raise ProbeFailed(f"no running {job_type} on host {host!r} in the metadata database")
    if isinstance(last, str):  # SQLite hands max() of a timestamp back as text
        last = dt.datetime.fromisoformat(last)
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    age = (dt.datetime.now(dt.UTC) - last).total_seconds()
    if age > max_age:
        raise ProbeFailed(f"{job_type} on {host!r}: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)")
    return f"{job_type} on {host!r}: heartbeat {age:.0f} s ago"


def celery_worker(kind: str, timeout: float, hostname: str | None = None) -> str:
    """Ping this host's Airflow or engine Celery worker through its broker."""
    from celery import Celery

    host = hostname or socket.gethostname()
    if kind == "airflow":
        url = os.environ.get("AIRFLOW__CELERY__BROKER_URL")
        if not url:
            raise ProbeFailed("AIRFLOW__CELERY__BROKER_URL is not set: no broker to ping the worker on")
        app = Celery("probe", broker=url)
        name = f"celery@{host}"
    elif kind == "engine":
        from crypto_ml.settings.engine import EngineConfig

        app = Celery("probe")
        app.config_from_object(EngineConfig.from_env().celery_settings())
        name = f"engine@{host}"
    else:  # argparse's choices keep this out; a caller from Python gets the same line
        raise ProbeFailed(f"unknown worker kind {kind!r}: use 'airflow' or 'engine'")
    try:
        replies = app.control.ping(destination=[name], timeout=timeout)
    finally:
        app.close()
    if not any(name in reply for reply in replies or []):
        raise ProbeFailed(f"worker {name} did not answer a ping within {timeout:g} s")
    return f"worker {name} answered"


def _connect_timeout(url: str) -> dict:
    return {"connect_timeout": 5} if url.startswith("postgresql") else {}


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crypto_ml.stack.probe", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="probe", required=True)
    job = sub.add_parser("airflow-job", help="an Airflow job of this host heart-beat recently")
    job.add_argument("job_type", help="SchedulerJob, TriggererJob or DagProcessorJob")
    job.add_argument("--max-age", type=float, default=60.0, help="seconds (default: %(default)s)")
    worker = sub.add_parser("celery-worker", help="this host's Celery worker answers a ping")
    worker.add_argument("kind", choices=("airflow", "engine"))
    worker.add_argument("--timeout", type=float, default=5.0, help="seconds (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.probe == "airflow-job":
            line = airflow_job(args.job_type, args.max_age)
        else:
            line = celery_worker(args.kind, args.timeout)
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as unhealthy, in one line
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

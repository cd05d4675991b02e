"""Airflow local settings of Crypto-ML (Airflow imports this module at start in every process; the
plugins folder is on its path).

Pre-import what every Crypto-ML task needs (pandas, SQLAlchemy, our operators, hooks, storage and
the engine client) in the long-lived processes that fork task processes, so each task inherits the
modules instead of importing them (about 2 s per task on a 2-core box, measured): the scheduler
(LocalExecutor forks its workers from it) and ``airflow celery worker`` (as Airflow's Celery
provider does for numpy). Other processes (api-server, triggerer, dag-processor, CLI) import
nothing more. ``CRYPTO_ML_PRELOAD=0`` turns it off.
"""

from __future__ import annotations

import os
import sys


def _forks_tasks(argv: list[str]) -> bool:
    args = [a for a in argv[1:] if not a.startswith("-")]
    return bool(args) and (args[0] in ("scheduler", "standalone") or args[:2] == ["celery", "worker"])


if os.environ.get("CRYPTO_ML_PRELOAD", "1") != "0" and _forks_tasks(sys.argv):
    from crypto_ml.pipeline.preload import preload

    preload()

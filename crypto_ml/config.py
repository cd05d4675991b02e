"""Where Crypto-ML keeps its files, from the environment.

- ``CRYPTO_ML_HOME``: models, plots and reports (default ``$AIRFLOW_HOME/crypto_ml``).
- ``AIRFLOW_HOME``: Airflow's home (default ``~/airflow``, as Airflow's own default); the repo's
  scripts set it to ``.airflow/`` inside the checkout so nothing leaks into the user's home.
- ``CRYPTO_ML_DATABASE_URL``: the project's database (see :func:`crypto_ml.storage.database_url`).
"""

from __future__ import annotations

import os
from pathlib import Path


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow").expanduser()


def home_dir() -> Path:
    """Crypto-ML's working folder (created on first use)."""
    path = Path(os.environ.get("CRYPTO_ML_HOME") or airflow_home() / "crypto_ml").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(*parts: str) -> Path:
    """A sub-folder of :func:`home_dir` (created on first use), e.g. ``artifacts_dir("models")``."""
    path = home_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def hostname() -> str:
    """This process's host name for Airflow (``[core] hostname_callable``): ``CRYPTO_ML_HOSTNAME``
    when set, else the machine's FQDN. Several Airflow workers on one machine (the Celery stack,
    a test) set it per worker, so the UI and the task instances tell them apart."""
    import socket

    return os.environ.get("CRYPTO_ML_HOSTNAME") or socket.getfqdn()

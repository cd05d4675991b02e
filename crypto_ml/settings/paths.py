"""Where Crypto-ML keeps its files, from the environment.

- ``CRYPTO_ML_HOME``: models, plots and reports (default ``$AIRFLOW_HOME/crypto_ml``).
- ``AIRFLOW_HOME``: Airflow's home; unset, the checkout's ``.airflow/`` (what
  ``scripts/env.sh`` sets), never the user's ``~/airflow``: outside a checkout the project's
  commands refuse, saying to set it.
- ``CRYPTO_ML_DATABASE_URL``: the project's database (see :func:`crypto_ml.storage.database_url`).
- ``CRYPTO_ML_ROOT``: the checkout holding ``dags/``, ``plugins/`` and ``airflow.cfg`` (which
  names its folders from it); default: the folder above this package (an editable install).
"""

from __future__ import annotations

import os
from pathlib import Path

from crypto_ml.settings import env_str


def airflow_home() -> Path:
    """``$AIRFLOW_HOME``; unset, the checkout's ``.airflow/`` (as ``scripts/env.sh`` sets it).
    Never Airflow's own default ``~/airflow``: outside a checkout, fails saying what to set."""
    raw = os.environ.get("AIRFLOW_HOME")
    if raw:
        return Path(raw).expanduser()
    try:
        return project_root() / ".airflow"
    except FileNotFoundError:
        raise FileNotFoundError(
            "AIRFLOW_HOME is not set, and crypto_ml does not run from a Crypto-ML checkout: set "
            "AIRFLOW_HOME (Airflow's home; Crypto-ML keeps its files in $AIRFLOW_HOME/crypto_ml unless "
            "CRYPTO_ML_HOME is set), or `source scripts/env.sh` in the checkout"
        ) from None


def project_root() -> Path:
    """The checkout whose ``dags/``, ``plugins/`` and ``airflow.cfg`` the local stacks run."""
    raw = env_str("CRYPTO_ML_ROOT")
    root = Path(raw).expanduser() if raw else Path(__file__).resolve().parents[2]
    missing = [part for part in ("dags", "plugins", "airflow.cfg") if not (root / part).exists()]
    if missing:
        source = "CRYPTO_ML_ROOT" if raw else "the folder above the installed crypto_ml package"
        raise FileNotFoundError(
            f"{source} ({root}) is not a Crypto-ML checkout: no {', '.join(missing)} there. "
            "Set CRYPTO_ML_ROOT to the checkout, or `source scripts/env.sh` in it."
        )
    return root


def project_env() -> dict[str, str]:
    """What every process of a local stack needs to find the project: ``CRYPTO_ML_ROOT`` and
    ``AIRFLOW_CONFIG`` (the repo's ``airflow.cfg`` unless one is set), whether or not the shell
    sourced ``scripts/env.sh``."""
    root = project_root()
    return {
        "CRYPTO_ML_ROOT": str(root),
        "AIRFLOW_CONFIG": os.environ.get("AIRFLOW_CONFIG") or str(root / "airflow.cfg"),
    }


def home_dir() -> Path:
    """Crypto-ML's working folder (created on first use)."""
    path = Path(env_str("CRYPTO_ML_HOME") or airflow_home() / "crypto_ml").expanduser()
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

    return env_str("CRYPTO_ML_HOSTNAME") or socket.getfqdn()

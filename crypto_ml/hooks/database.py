"""Hook to the project's own database (prices, predictions, trades), not Airflow's metadata DB."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook


class CryptoDatabaseHook(BaseHook):
    """The SQLAlchemy URL of the project database.

    Resolution: ``CRYPTO_ML_DATABASE_URL``, else the Connection ``db_conn_id`` (a ``postgres`` or
    ``sqlite`` Connection; default ``crypto_ml_db``), else SQLite under ``$AIRFLOW_HOME``. See
    :func:`crypto_ml.storage.database_url`.

    :param db_conn_id: Connection id of the project database.
    """

    conn_name_attr = "db_conn_id"
    default_conn_name = "crypto_ml_db"
    conn_type = "postgres"
    hook_name = "Crypto-ML project database"

    def __init__(self, db_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db_conn_id = db_conn_id

    def get_url(self) -> str:
        import os

        from crypto_ml.storage import database_url
        from crypto_ml.storage.db import CONN_ID, ENV_VAR, airflow_connection_url

        if self.db_conn_id != CONN_ID and not os.environ.get(ENV_VAR):
            url = airflow_connection_url(self.db_conn_id)
            if url:
                return url
        return database_url()

    def get_sqlalchemy_engine(self):
        from crypto_ml.storage import get_engine

        return get_engine(self.get_url())

    def test_connection(self) -> tuple[bool, str]:
        from sqlalchemy import text

        try:
            with self.get_sqlalchemy_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            return False, str(exc)
        return True, "connected"

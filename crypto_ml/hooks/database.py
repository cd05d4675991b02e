"""Hook to the project's own database (prices, predictions, trades), not Airflow's metadata DB."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: SQLAlchemy driver of each accepted Connection type.
_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2"}


def connection_url(conn: Any) -> str:
    """The SQLAlchemy URL of an Airflow Connection of the project database.

    - type ``crypto_ml_db`` (this hook's own, "Crypto-ML project database" in the UI): the extra
      field ``url`` when set (any SQLAlchemy URL, e.g. ``sqlite:////data/crypto_ml.db``), else
      PostgreSQL from host, port, login, password and database (the *schema* field);
    - type ``postgres`` / ``postgresql``: PostgreSQL from the same fields;
    - type ``sqlite``: the file named in *host* (or *schema*).
    """
    kind = (conn.conn_type or "").replace("-", "_")
    extra = conn.extra_dejson if conn.extra else {}
    if kind == "crypto_ml_db" and extra.get("url"):
        return str(extra["url"])
    if kind == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ValueError(f"sqlite Connection {conn.conn_id!r} names no file (host)")
        return f"sqlite:///{path}"
    if kind in ("crypto_ml_db", *_DRIVERS):
        if not conn.host:
            raise ValueError(
                f"Connection {conn.conn_id!r} ({kind}) names no host: set host/port/login/password/"
                "database, or the extra field url"
            )
        auth = ""
        if conn.login:
            auth = quote(conn.login, safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            auth += "@"
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql+psycopg2://{auth}{conn.host}{port}/{conn.schema or ''}"
    raise ValueError(
        f"Connection {conn.conn_id!r} has type {conn.conn_type!r}; the project database takes a "
        "crypto_ml_db, postgres or sqlite Connection"
    )


class CryptoDatabaseHook(BaseHook):
    """The SQLAlchemy URL and engine of the project database.

    Which database, in order:

    1. a ``db_conn_id`` other than the default: that Connection, always (it must exist; a task
       pointed at another database never silently writes to the deployment's);
    2. ``CRYPTO_ML_DATABASE_URL`` (the deployment's setting, also read by the engine workers);
    3. the Connection ``crypto_ml_db`` when it is defined;
    4. SQLite under ``$AIRFLOW_HOME`` (:func:`crypto_ml.storage.database_url`).

    The Connection's type is ``crypto_ml_db`` (its own form in the UI: host, port, login,
    password, database, or one full SQLAlchemy URL in the field *URL*); a ``postgres`` or
    ``sqlite`` Connection is accepted too (see :func:`connection_url`).

    :param db_conn_id: Connection id of the project database.
    """

    conn_name_attr = "db_conn_id"
    default_conn_name = "crypto_ml_db"
    conn_type = "crypto_ml_db"
    hook_name = "Crypto-ML project database"

    def __init__(self, db_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db_conn_id = db_conn_id

    def _connection_url(self, *, required: bool) -> str | None:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.db_conn_id)
        except AirflowNotFoundException:
            if required:
                raise AirflowNotFoundException(
                    f"project database Connection {self.db_conn_id!r} is not defined (define it, e.g. "
                    f"AIRFLOW_CONN_{self.db_conn_id.upper()}='postgresql://user:pass@host:5432/db', or "
                    f"use the default {self.default_conn_name!r})"
                ) from None
            return None
        return connection_url(conn)

    def get_url(self) -> str:
        """The SQLAlchemy URL (see the class docstring for the order)."""
        from crypto_ml.storage.db import ENV_VAR

        if self.db_conn_id != self.default_conn_name:
            return self._connection_url(required=True)
        if os.environ.get(ENV_VAR):
            return os.environ[ENV_VAR]
        url = self._connection_url(required=False)
        if url:
            return url
        # Not database_url(): it would look the Connection up again (one more request to the
        # api-server per task, each a 404 on the embedded default).
        from crypto_ml.storage.db import default_database_url

        return default_database_url()

    def get_sqlalchemy_engine(self) -> Engine:
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

"""Alembic environment of the crypto_ml database.

There is no alembic.ini: :func:`crypto_ml.storage.db.migrate` builds the config in code and passes an
open connection in ``config.attributes["connection"]``. Without one, the URL comes from the
``sqlalchemy.url`` option or :func:`crypto_ml.storage.db.database_url`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from crypto_ml.storage.db import get_engine
from crypto_ml.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_engine().url,
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with get_engine(config.get_main_option("sqlalchemy.url")).connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

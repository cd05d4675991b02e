"""The project database's hook: which database, and how many Connection lookups it costs.

Every lookup of a Connection in a task process is a request to the api-server (a 404 when the
Connection is not defined, as on the embedded default); transform and decide run once per coin.
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from crypto_ml import storage
from crypto_ml.hooks.database import CryptoDatabaseHook
from crypto_ml.pipeline import steps as pipeline
from crypto_ml.storage.db import ENV_VAR


@pytest.fixture
def lookups(monkeypatch, tmp_path):
    """Connection lookups of the hook and of storage, all answered "not defined"."""
    seen: list[str] = []

    def not_found(conn_id, *args, **kwargs):
        seen.append(conn_id)
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    from airflow.sdk import Connection

    monkeypatch.setattr(CryptoDatabaseHook, "get_connection", classmethod(lambda cls, c: not_found(c)))
    monkeypatch.setattr(Connection, "get", staticmethod(not_found))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_CRYPTO_ML_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    storage.db._conn_cache.clear()
    return seen


def test_the_default_database_costs_one_lookup(lookups, tmp_path):
    assert CryptoDatabaseHook().get_url() == f"sqlite:///{tmp_path / 'crypto_ml.db'}"
    assert lookups == ["crypto_ml_db"]


def test_the_deployment_setting_costs_no_lookup(lookups, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "postgresql+psycopg2://db.example/crypto_ml")
    assert CryptoDatabaseHook().get_url() == "postgresql+psycopg2://db.example/crypto_ml"
    assert lookups == []


def test_another_connection_must_exist(lookups):
    with pytest.raises(AirflowNotFoundException, match="'elsewhere' is not defined"):
        CryptoDatabaseHook("elsewhere").get_url()
    assert lookups == ["elsewhere"]


def test_transform_reads_the_market_only_when_it_must_ingest(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    calls = []

    def market():
        calls.append(1)
        from crypto_ml.markets import MarketConfig

        return MarketConfig()  # the replay

    first = pipeline.transform("bitcoin", "2017-06-01", url=url, market=market)
    assert calls == [1] and first["last_date"] == "2017-06-01"  # nothing stored: ingested
    again = pipeline.transform("bitcoin", "2017-06-01", url=url, market=market)
    assert calls == [1] and again == first  # stored now: the market is not read

"""The generic upsert: idempotent per table, honest inserted/updated counts, chunking."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects import mysql

from crypto_ml.storage import (
    ModelVersion,
    Prediction,
    Price,
    QuarantinedRow,
    TradeRequest,
    UpsertResult,
    count_rows,
    get_engine,
    migrate,
    session_scope,
    upsert,
)

D0 = dt.date(2017, 1, 1)


def _price(i: int, close: float = 1.0) -> dict:
    return {
        "coin": "btc",
        "date": D0 + dt.timedelta(days=i),
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "volume": None,
        "market_cap": None,
        "synthetic": False,
        "source": "test",
    }


ROWS = {
    Price: ([_price(0), _price(1)], None),
    QuarantinedRow: (
        [
            {
                "coin": "btc",
                "date": D0,
                "origin": "btc.csv",
                "line": 3,
                "rule": "bad_price",
                "severity": "error",
                "message": "close is negative",
                "raw": {"close": -1},
                "source": "test",
            },
        ],
        "uq_quarantined_rows_coin_origin_line_rule",
    ),
    ModelVersion: (
        [
            {
                "coin": "btc",
                "model": "arima",
                "version": 1,
                "train_end": D0,
                "fingerprint": "f" * 64,
                "params": {"p": 1},
            }
        ],
        None,
    ),
    Prediction: (
        [
            {
                "coin": "btc",
                "as_of": D0,
                "model": "arima",
                "version": 1,
                "horizon": 3,
                "values": [1.0, 2.0, 3.0],
                "last_close": 1.0,
                "expected_return": 2.0,
            }
        ],
        None,
    ),
    TradeRequest: (
        [
            {
                "coin": "btc",
                "as_of": D0,
                "model": "arima",
                "version": 1,
                "horizon": 3,
                "side": "buy",
                "quantity": 1.0,
                "price": 1.0,
                "expected_return": 2.0,
                "broker": "paper",
                "status": "new",
                "idempotency_key": "k1",
            }
        ],
        None,
    ),
}


@pytest.mark.parametrize("model_cls", list(ROWS), ids=lambda m: m.__tablename__)
def test_upsert_twice_inserts_once(db_url, model_cls):
    migrate(db_url)
    rows, constraint = ROWS[model_cls]
    with session_scope(db_url) as session:
        first = upsert(session, model_cls, rows, constraint=constraint)
    with session_scope(db_url) as session:
        second = upsert(session, model_cls, rows, constraint=constraint)
    assert first == UpsertResult(inserted=len(rows), updated=0)
    assert second == UpsertResult(inserted=0, updated=len(rows))
    assert count_rows(model_cls.__tablename__, db_url) == len(rows)
    with session_scope(db_url) as session:
        nothing = upsert(session, model_cls, rows, update_columns=[], constraint=constraint)
    assert nothing == UpsertResult(0, 0)
    assert count_rows(model_cls.__tablename__, db_url) == len(rows)


def test_upsert_updates_values_and_counts_mixed_batches(db_url):
    migrate(db_url)
    with get_engine(db_url).begin() as conn:
        assert upsert(conn, Price, [_price(0, 1.0)]) == UpsertResult(1, 0)
        assert upsert(conn, Price, [_price(0, 5.0), _price(1, 2.0)]) == UpsertResult(1, 1)
        # Only the listed columns change on conflict.
        assert upsert(conn, Price, [_price(0, 9.0)], update_columns=["close"]) == UpsertResult(0, 1)
        row = conn.execute(select(Price.open, Price.close).where(Price.date == D0)).one()
    assert tuple(row) == (5.0, 9.0)


def test_upsert_chunks_large_batches_and_collapses_repeated_keys(db_url):
    migrate(db_url)
    rows = [_price(i, float(i)) for i in range(1234)]
    with session_scope(db_url) as session:
        assert upsert(session, Price, rows + [_price(0, 42.0)]) == UpsertResult(1234, 0)
    with session_scope(db_url) as session:
        assert upsert(session, Price, rows) == UpsertResult(0, 1234)
        assert session.scalar(select(func.count()).select_from(Price)) == 1234


def test_upsert_rolls_back_with_the_transaction(db_url):
    migrate(db_url)
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        upsert(session, Price, [_price(0)])
        raise RuntimeError("task failed")
    assert count_rows("prices", db_url) == 0


def test_upsert_rejects_bad_input(sqlite_url):
    migrate(sqlite_url)
    with get_engine(sqlite_url).begin() as conn:
        with pytest.raises(ValueError, match="same keys"):
            upsert(conn, Price, [_price(0), {"coin": "btc", "date": D0}])
        with pytest.raises(ValueError, match="no unique constraint 'nope'"):
            upsert(conn, Price, [_price(0)], constraint="nope")
        with pytest.raises(ValueError, match="unknown columns"):
            upsert(conn, Price, [{**_price(0), "colour": "red"}])
        assert upsert(conn, Price, []) == UpsertResult(0, 0)


def test_upsert_rejects_other_dialects():
    # Only the dialect is looked at before refusing, so a bare stand-in for a MySQL connection will do.
    conn = SimpleNamespace(dialect=mysql.dialect())
    with pytest.raises(ValueError, match="only PostgreSQL and SQLite, not the 'mysql' dialect"):
        upsert(conn, Price, [_price(0)])

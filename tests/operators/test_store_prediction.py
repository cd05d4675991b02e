"""The store step on its own and after a branch, on real SQLite and PostgreSQL: one prediction
row and one decision, whichever ran and however often."""

from __future__ import annotations

import threading

import pytest

from crypto_ml.storage import count_rows, get_predictions, migrate
from crypto_ml.trading.brokers import PaperBroker
from crypto_ml.trading.rules import TradingRules
from crypto_ml.trading.service import (
    STORED_WITHOUT_BRANCH,
    place_recorded_order,
    record_decision,
    recorded_decision,
    store_prediction_once,
)


def prediction(er=0.05, coin="btc", as_of="2024-03-01", last_close=100.0):
    values = [last_close * (1 + er / 2), last_close * (1 + er)]
    return {
        "coin": coin,
        "as_of": as_of,
        "model": "linear",
        "version": 3,
        "horizon": 2,
        "values": values,
        "last_close": last_close,
        "expected_return": values[-1] / last_close - 1,
    }


@pytest.fixture
def db(db_url):
    migrate(db_url)
    return db_url


def test_without_a_branch_the_prediction_is_stored_once_with_a_store_decision(db):
    first = store_prediction_once(prediction(), url=db, run_id="run-1")
    assert (first["decision"], first["reason"], first["status"], first["duplicate"]) == (
        "store",
        STORED_WITHOUT_BRANCH,
        "stored",
        False,
    )
    [row] = get_predictions(coin="btc", url=db)
    assert row["run_id"] == "run-1" and row["decision"] == "store"
    # A retry, a clear, a second DAG run: nothing written, the first record returned.
    again = store_prediction_once({**prediction(), "values": [1.0, 2.0]}, url=db, run_id="run-2")
    assert again == {**first, "duplicate": True}
    [row] = get_predictions(coin="btc", url=db)
    assert row["run_id"] == "run-1" and row["values"] == prediction()["values"]
    assert count_rows("trade_requests", db) == 0


def test_after_a_branch_nothing_is_written_and_the_recorded_decision_returned(db):
    rules = TradingRules(max_total_notional=1e9)
    decided = record_decision(
        prediction(), kill_switch=False, rules=rules, broker=PaperBroker(db), url=db, run_id="run-1"
    )
    assert decided["decision"] == "trade"
    before = recorded_decision(prediction(), db)
    stored = store_prediction_once(prediction(), url=db, run_id="run-2")
    assert stored == {**decided, "duplicate": True}
    assert recorded_decision(prediction(), db) == before  # same decision, same decided_at
    [row] = get_predictions(coin="btc", url=db)
    assert row["run_id"] == "run-1"
    # The trade still goes out, once.
    placed = place_recorded_order(prediction(), kill_switch=False, broker=PaperBroker(db), url=db)
    assert placed["status"] == "filled"
    assert count_rows("paper_orders", db) == 1


def test_a_branch_after_a_store_returns_the_store_decision(db):
    store_prediction_once(prediction(), url=db)
    decided = record_decision(
        prediction(),
        kill_switch=False,
        rules=TradingRules(max_total_notional=1e9),
        broker=PaperBroker(db),
        url=db,
    )
    assert (decided["decision"], decided["reason"]) == ("store", STORED_WITHOUT_BRANCH)
    assert decided["duplicate"]
    assert count_rows("trade_requests", db) == 0 and count_rows("predictions", db) == 1


@pytest.mark.postgres
def test_racing_stores_write_one_row_and_one_decision_on_postgres(pg_url):
    migrate(pg_url)
    barrier, results, errors = threading.Barrier(8), [], []

    def run():
        try:
            barrier.wait()
            results.append(store_prediction_once(prediction(), url=pg_url))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert [r["decision"] for r in results] == ["store"] * 8
    assert sum(not r["duplicate"] for r in results) == 1
    assert count_rows("predictions", pg_url) == 1

"""The decision's compare-and-set (crypto_ml.storage.ledger.record_decision): the first decision
wins, and only the winner writes its trade request."""

from __future__ import annotations

import datetime as dt

import pytest

from crypto_ml.storage import get_trade_requests, migrate, store_prediction
from crypto_ml.storage.ledger import record_decision

KEY = {"coin": "bitcoin", "as_of": dt.date(2017, 6, 1), "model": "ar", "version": 1, "horizon": 10}


@pytest.fixture
def url(sqlite_url):
    migrate(sqlite_url)
    store_prediction(values=[110.0] * 10, last_close=100.0, url=sqlite_url, **KEY)
    return sqlite_url


def _trade():
    return dict(
        KEY,
        side="buy",
        quantity=1.0,
        price=100.0,
        expected_return=0.1,
        broker="paper",
        idempotency_key="bitcoin-2017-06-01-ar-1-10",
    )


def test_a_decider_that_loses_the_race_leaves_no_trade_request(url):
    key = tuple(KEY.values())
    assert record_decision(key, decision="store", reason="stored first", url=url) is True
    # The store won; a trade decided on the same prediction afterwards is refused, and its
    # write-ahead request is not written (it was, before: an orphan "pending" row no one places).
    assert record_decision(key, decision="trade", reason="late", trade=_trade(), url=url) is False
    assert get_trade_requests(url=url) == []


def test_the_winning_trade_decision_writes_its_request_once(url):
    key = tuple(KEY.values())
    assert record_decision(key, decision="trade", reason="signal", trade=_trade(), url=url) is True
    assert record_decision(key, decision="trade", reason="again", trade=_trade(), url=url) is False
    (row,) = get_trade_requests(url=url)
    assert row["status"] == "pending" and row["side"] == "buy"

"""Paper broker: a ledger in the real project DB (SQLite and PostgreSQL); idempotent and race-safe."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from crypto_ml.storage import PaperFill, PaperOrder, PaperPosition, count_rows, get_engine, migrate
from crypto_ml.trading.brokers import IdempotencyConflict, OrderRequest, OrderResult, PaperBroker


def order(key="k1", side="buy", qty=2.0, price=100.0, coin="btc", as_of="2024-01-01") -> OrderRequest:
    return OrderRequest(idempotency_key=key, coin=coin, side=side, quantity=qty, price=price, as_of=as_of)


@pytest.fixture
def paper(db_url):
    migrate(db_url)
    return PaperBroker(db_url)


def ledger(url):
    with get_engine(url).connect() as conn:
        orders = conn.execute(
            select(PaperOrder.idempotency_key, PaperOrder.status).order_by(PaperOrder.idempotency_key)
        ).all()
        fills = conn.execute(select(PaperFill.idempotency_key, PaperFill.quantity, PaperFill.price)).all()
        positions = conn.execute(
            select(PaperPosition.coin, PaperPosition.quantity, PaperPosition.avg_price)
        ).all()
    return [tuple(r) for r in orders], [tuple(r) for r in fills], {r[0]: (r[1], r[2]) for r in positions}


def test_buy_fills_and_moves_the_position(paper, db_url):
    res = paper.place_order(order())
    assert isinstance(res, OrderResult)
    assert (res.status, res.order_id, res.filled_qty, res.fill_price, res.duplicate) == (
        "filled",
        "k1",
        2.0,
        100.0,
        False,
    )
    assert res.raw["position"] == 2.0
    assert paper.position("btc") == 2.0
    assert paper.position("eth") == 0.0
    assert paper.total_notional() == pytest.approx(200.0)
    assert ledger(db_url) == ([("k1", "filled")], [("k1", 2.0, 100.0)], {"btc": (2.0, 100.0)})


def test_same_key_twice_places_one_order(paper, db_url):
    first = paper.place_order(order())
    again = paper.place_order(order())
    assert again.duplicate is True
    assert (again.status, again.order_id, again.filled_qty, again.fill_price) == (
        first.status,
        first.order_id,
        first.filled_qty,
        first.fill_price,
    )
    assert paper.position("btc") == 2.0
    assert count_rows("paper_orders", db_url) == 1
    assert count_rows("paper_fills", db_url) == 1


def test_reused_key_for_another_order_is_a_conflict(paper, db_url):
    paper.place_order(order())
    with pytest.raises(IdempotencyConflict, match="already used"):
        paper.place_order(order(qty=3.0))
    assert paper.position("btc") == 2.0


def test_average_price_and_sells(paper):
    paper.place_order(order("a", qty=1, price=100))
    paper.place_order(order("b", qty=3, price=200))
    assert paper.position("btc") == 4.0
    assert paper.total_notional() == pytest.approx(700.0)  # avg 175
    res = paper.place_order(order("c", side="sell", qty=1, price=300))
    assert res.status == "filled"
    assert paper.position("btc") == 3.0
    assert paper.total_notional() == pytest.approx(3 * 175.0)  # reducing keeps the entry price
    paper.place_order(order("d", side="sell", qty=3, price=300))
    assert paper.position("btc") == 0.0
    assert paper.total_notional() == 0.0
    assert paper.positions() == {}


def test_selling_more_than_held_is_rejected(paper, db_url):
    paper.place_order(order("a", qty=1))
    res = paper.place_order(order("b", side="sell", qty=1.5))
    assert res.status == "rejected"
    assert res.filled_qty == 0.0 and res.fill_price is None
    assert "only 1 held" in res.reason and res.raw["reason"] == res.reason
    assert paper.position("btc") == 1.0
    again = paper.place_order(order("b", side="sell", qty=1.5))  # the rejection is remembered too
    assert (again.status, again.duplicate, again.reason) == ("rejected", True, res.reason)
    orders, fills, _ = ledger(db_url)
    assert orders == [("a", "filled"), ("b", "rejected")]
    assert len(fills) == 1


def test_selling_nothing_is_rejected(paper):
    res = paper.place_order(order(side="sell", coin="eth"))
    assert res.status == "rejected" and "only 0 held" in res.reason
    assert paper.positions() == {}


def test_short_when_allowed(db_url):
    migrate(db_url)
    broker = PaperBroker(db_url, allow_short=True)
    broker.place_order(order("a", side="sell", qty=2, price=100))
    assert broker.position("btc") == -2.0
    assert broker.total_notional() == pytest.approx(200.0)
    broker.place_order(order("b", side="buy", qty=3, price=50))  # covers and flips long at 50
    assert broker.position("btc") == 1.0
    assert broker.total_notional() == pytest.approx(50.0)


@pytest.mark.parametrize(
    "kwargs", [{"key": ""}, {"side": "hold"}, {"qty": 0}, {"qty": float("nan")}, {"price": -1}]
)
def test_order_request_validation(kwargs):
    with pytest.raises(ValueError, match="OrderRequest"):
        order(**kwargs)


def _race(n, target):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_same_key_fills_once_on_postgres(pg_url, attempt):
    migrate(pg_url)
    results = _race(8, lambda i: PaperBroker(pg_url).place_order(order("same")))
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert {(r.status, r.filled_qty, r.fill_price) for r in results} == {("filled", 2.0, 100.0)}
    assert ledger(pg_url) == ([("same", "filled")], [("same", 2.0, 100.0)], {"btc": (2.0, 100.0)})


@pytest.mark.postgres
def test_concurrent_distinct_keys_all_count_on_postgres(pg_url):
    migrate(pg_url)
    _race(8, lambda i: PaperBroker(pg_url).place_order(order(f"k{i}", qty=1.0, price=100.0 + i)))
    broker = PaperBroker(pg_url)
    assert broker.position("btc") == 8.0
    assert broker.total_notional() == pytest.approx(sum(100.0 + i for i in range(8)))


def test_concurrent_same_key_fills_once_on_sqlite(sqlite_url):
    migrate(sqlite_url)
    results = _race(4, lambda i: PaperBroker(sqlite_url).place_order(order("same")))
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert ledger(sqlite_url) == ([("same", "filled")], [("same", 2.0, 100.0)], {"btc": (2.0, 100.0)})

"""Domain-level reads and writes, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crypto_ml.data.validation import Finding
from crypto_ml.storage import (
    Price,
    UpsertResult,
    count_rows,
    get_predictions,
    get_trade_requests,
    latest_model_version,
    migrate,
    price_range,
    record_model_version,
    session_scope,
    store_prediction,
    store_prices,
    store_quarantine,
    store_trade_request,
)


@pytest.fixture
def url(db_url):
    migrate(db_url)
    return db_url


def _frame(closes: list[float], volume: list[float] | None = None, coin: str = "btc") -> pd.DataFrame:
    n = len(closes)
    return pd.DataFrame(
        {
            "coin": coin,
            "name": coin.title(),
            "date": pd.date_range("2017-01-01", periods=n, freq="D"),
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": volume if volume is not None else [1.0] * n,
            "market_cap": [10.0] * n,
            "synthetic": np.zeros(n, dtype=bool),
        }
    )


def _mv(url, fingerprint="a" * 64, train_end="2017-06-01", **kw):
    args = dict(
        coin="btc",
        model="arima",
        train_start="2017-01-01",
        train_end=train_end,
        n_obs=150,
        params={"order": [1, 1, 0]},
        metrics={"rmse": 1.5},
        artifact_path="/m/btc.pkl",
        fingerprint=fingerprint,
        url=url,
    )
    return record_model_version(**{**args, **kw})


def test_store_prices_restated_day_updates_in_place(url):
    assert store_prices(_frame([1.0, 2.0, 3.0]), source="bundled", url=url) == UpsertResult(3, 0)
    restated = _frame([1.0, 2.5, 3.0, 4.0])
    assert store_prices(restated, source="api", url=url) == UpsertResult(1, 3)
    assert count_rows("prices", url) == 4
    assert price_range(url) == {"btc": (dt.date(2017, 1, 1), dt.date(2017, 1, 4))}
    with session_scope(url) as session:
        day2 = session.get(Price, ("btc", dt.date(2017, 1, 2)))
        assert (day2.close, day2.source, day2.synthetic) == (2.5, "api", False)


def test_store_prices_nan_volume_is_null(url):
    store_prices(_frame([1.0, 2.0], volume=[np.nan, 5.0]), source="bundled", url=url)
    with session_scope(url) as session:
        volumes = session.execute(select(Price.date, Price.volume).order_by(Price.date)).all()
    assert [v for _, v in volumes] == [None, 5.0]


def test_store_quarantine_dedups_and_keeps_only_errors(url):
    findings = [
        Finding(
            "btc",
            "bad_price",
            "error",
            "close -1 is not positive",
            "btc.csv",
            7,
            "2017-01-05",
            {"close": -1.0},
        ),
        Finding("btc", "not_a_date", "error", "date 'x' is missing", "btc.csv", 9, None, {"date": "x"}),
        Finding("btc", "gap", "warning", "2 days missing", "btc.csv", None, "2017-02-01"),
    ]
    assert store_quarantine(findings, source="bundled", url=url) == UpsertResult(2, 0)
    assert store_quarantine(findings, source="bundled", url=url) == UpsertResult(0, 2)
    assert count_rows("quarantined_rows", url) == 2
    unknown_line = [Finding("eth", "bad_price", "error", "x", "", None, None, {})]
    store_quarantine(unknown_line, source="api", url=url)
    assert store_quarantine(unknown_line, source="api", url=url) == UpsertResult(0, 1)
    assert count_rows("quarantined_rows", url) == 3


def test_record_model_version_idempotent_and_increments(url):
    assert _mv(url) == 1
    assert _mv(url) == 1
    assert _mv(url, fingerprint="b" * 64) == 2
    assert _mv(url, train_end="2017-07-01") == 3
    assert _mv(url, model="lstm") == 1
    assert count_rows("model_versions", url) == 4


def test_latest_model_version_respects_as_of(url):
    assert latest_model_version("btc", "arima", url=url) is None
    _mv(url, train_end="2017-03-01", fingerprint="a" * 64)
    _mv(url, train_end="2017-06-01", fingerprint="b" * 64)
    assert latest_model_version("btc", "arima", as_of=dt.date(2017, 5, 31), url=url)["version"] == 1
    latest = latest_model_version("btc", "arima", as_of="2017-06-01", url=url)
    assert latest["version"] == 2
    assert latest["train_end"] == dt.date(2017, 6, 1)
    assert latest["params"] == {"order": [1, 1, 0]}
    assert latest_model_version("btc", "arima", url=url)["version"] == 2
    assert latest_model_version("btc", "arima", as_of="2017-02-28", url=url) is None


def test_store_prediction_restore_keeps_one_row(url):
    key = dict(coin="btc", as_of="2017-06-01", model="arima", version=1, horizon=3, url=url)
    assert store_prediction(values=[101.0, 102.0, 110.0], last_close=100.0, run_id="r1", **key) == (
        UpsertResult(1, 0)
    )
    assert store_prediction(values=[99.0, 98.0, 90.0], last_close=100.0, run_id="r2", **key) == (
        UpsertResult(0, 1)
    )
    [pred] = get_predictions(coin="btc", as_of=dt.date(2017, 6, 1), url=url)
    assert pred["values"] == [99.0, 98.0, 90.0]
    assert pred["expected_return"] == pytest.approx(-0.1)
    assert pred["run_id"] == "r2"
    assert get_predictions(coin="eth", url=url) == []
    with pytest.raises(ValueError, match="values is empty"):
        store_prediction(values=[], last_close=100.0, **key)


def test_trade_request_idempotency(url):
    base = dict(
        coin="btc",
        as_of="2017-06-01",
        model="arima",
        version=1,
        horizon=3,
        side="buy",
        quantity=0.5,
        price=100.0,
        expected_return=0.1,
        broker="paper",
        url=url,
    )
    assert store_trade_request(status="pending", idempotency_key="k-1", **base) == UpsertResult(1, 0)
    filled = store_trade_request(status="filled", idempotency_key="k-1", response={"id": 7}, **base)
    assert filled == UpsertResult(0, 1)
    [trade] = get_trade_requests(coin="btc", url=url)
    assert (trade["status"], trade["response"], trade["idempotency_key"]) == ("filled", {"id": 7}, "k-1")
    # The same idempotency key for another prediction is refused.
    with pytest.raises(IntegrityError):
        store_trade_request(status="pending", idempotency_key="k-1", **{**base, "horizon": 5})
    assert count_rows("trade_requests", url) == 1
    assert get_trade_requests(status="pending", url=url) == []


@pytest.mark.postgres
def test_concurrent_record_model_version_gets_distinct_versions(pg_url):
    migrate(pg_url)
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def worker(fingerprint: str) -> None:
        try:
            barrier.wait()
            results[fingerprint] = _mv(pg_url, fingerprint=fingerprint)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    for round_ in range(5):
        results.clear()
        threads = [threading.Thread(target=worker, args=(f"{round_}-{x}",)) for x in "xy"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sorted(results.values()) == [2 * round_ + 1, 2 * round_ + 2]
    assert latest_model_version("btc", "arima", url=pg_url)["version"] == 10
    assert count_rows("model_versions", pg_url) == 10


def test_load_prices_point_in_time(db_url):
    import pandas as pd

    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.storage import load_prices, migrate, store_prices

    migrate(db_url)
    loader = CryptoLoader()
    store_prices(loader.frame().query("coin == 'neblio'"), source="bundled", url=db_url)
    got = load_prices("neblio", as_of="2017-09-20", url=db_url)
    want = loader.get_df("neblio", as_of="2017-09-20")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert load_prices("bitcoin", url=db_url).empty

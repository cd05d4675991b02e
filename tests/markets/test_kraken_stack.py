"""End to end on the embedded stack with the second exchange shape: ``crypto_ml_master`` on the
Kraken-shaped exchange through ccxt's kraken class, the setting written as the README writes it
(an unencoded ``api_url`` in the URI), three consecutive days, then a backfill of two earlier days.

The same stack and checks as ``tests/pipeline/test_live_market_stack.py`` (Binance): every closed
candle Kraken serves stored once, nothing after the newest run day, every coin run predicted from
the data up to its own day; and the 720-candle cap said in the poll, not a silent cut."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time

import pytest

import tests.pipeline.test_live_market_stack as live
from crypto_ml import storage
from crypto_ml.testing.fake_kraken import DEPTH, FakeKraken, FakeMarket

MASTER = "crypto_ml_master"


def _poll_results(airflow_db) -> list[dict]:
    with sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'poll_new_data' "
                            "AND key = 'return_value'", (MASTER,)).fetchall()
    out = []
    for (value,) in rows:
        value = json.loads(value) if isinstance(value, (str, bytes)) else value
        out.append(json.loads(value) if isinstance(value, str) else value)
    return out


def test_three_days_and_a_backfill_on_kraken(tmp_path, monkeypatch):
    from crypto_ml.stack.local import LocalStack
    from crypto_ml.stack.supervisor import find_bin as _bin

    today = dt.datetime.now(dt.UTC).date()
    markets = [FakeMarket("BTC", "USD", first=today - dt.timedelta(days=1000), price=60_000.0),
               FakeMarket("ETH", "USD", first=today - dt.timedelta(days=120), price=3_000.0)]
    days = [(today - dt.timedelta(days=k)).isoformat() for k in (5, 4, 3)]
    backfill = [(today - dt.timedelta(days=k)).isoformat() for k in (9, 8)]
    with FakeKraken(markets) as exchange:
        project_db = tmp_path / "project.db"
        url = f"sqlite:///{project_db}"
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
        monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("CRYPTO_ML_DATABASE_URL", url)
        monkeypatch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")  # only our runs
        monkeypatch.setenv("AIRFLOW_CONN_CRYPTO_ML_MARKET",  # as the README writes it: unencoded
                           "crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&backoff=0.2"
                           f"&rate_limit_ms=0&api_url={exchange.api_url}")
        for name in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND"):
            monkeypatch.delenv(name, raising=False)
        airflow_db = tmp_path / "airflow" / "airflow.db"
        with LocalStack(port=live._free_port()) as stack:
            env = stack.env()

            def airflow(*args):
                return subprocess.run([_bin("airflow"), *args], env=env, capture_output=True,
                                      text=True, timeout=300)

            deadline = time.monotonic() + 240
            while "crypto_ml_coin" not in airflow("dags", "list", "-o", "plain").stdout:
                assert time.monotonic() < deadline, "DAGs not parsed"
                time.sleep(3)
            for dag_id in ("crypto_ml_coin", MASTER):
                assert airflow("dags", "unpause", dag_id).returncode == 0
            for day in days:
                out = airflow("dags", "trigger", MASTER, "--logical-date", f"{day}T00:00:00+00:00")
                assert out.returncode == 0, out.stderr[-2000:]
            assert set(live._wait(airflow_db, days, stack).values()) == {"success"}
            for _ in range(3):
                out = airflow("backfill", "create", "--dag-id", MASTER,
                              "--from-date", backfill[0], "--to-date", backfill[1])
                if out.returncode == 0 or "database is locked" not in out.stdout + out.stderr \
                        or live._backfills(airflow_db):
                    break
                time.sleep(2)
            assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
            assert set(live._wait(airflow_db, backfill, stack).values()) == {"success"}
            coin_runs = live._coin_runs(airflow_db)
            polls = _poll_results(airflow_db)

    newest = max(days)
    served_from = (today - dt.timedelta(days=DEPTH - 1)).isoformat()
    total = 0
    for market in markets:
        coin = f"{market.base.lower()}-usd"
        stored = storage.load_prices(coin, url=url)
        dates = [d.date().isoformat() for d in stored["Date"]]
        assert len(dates) == len(set(dates)), f"{coin}: a candle stored twice"
        want = {d: c for d, c in market.closes(today).items() if served_from <= d <= newest}
        assert dates == sorted(want), f"{coin}: stored {dates[0]}..{dates[-1]}, want {min(want)}..{max(want)}"
        assert stored["Close"].tolist() == pytest.approx([want[d] for d in dates], rel=1e-5)
        total += len(dates)
        for day in [*backfill, *days]:
            preds = storage.get_predictions(coin=coin, as_of=day, url=url)
            assert len(preds) == 1, f"{coin} {day}: {len(preds)} predictions"
            assert preds[0]["last_close"] == pytest.approx(want[day], rel=1e-5), f"{coin} {day}"
    assert storage.count_rows("prices", url=url) == total
    assert coin_runs == {f"{c}-usd__{d}": "success" for c in ("btc", "eth") for d in [*backfill, *days]}
    # the first poll said Kraken cut BTC/USD's history (1,000 days listed, 720 served)
    said = [w for p in polls for w in p.get("warnings", []) if "[history_limit]" in w]
    assert any("btc-usd (BTC/USD) on kraken: history before" in w for w in said), polls
    storage.dispose_engine(url)

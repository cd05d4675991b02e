"""Our operators composed as a data engineer composes them (``tests/operators/dags/``), each DAG run
twice with ``dag.test()`` against a real engine worker: the first run stores one prediction row per
coin, the second writes nothing (the rows, their run id and their decisions unchanged).
"""

from __future__ import annotations

import pytest

from crypto_ml import storage
from crypto_ml.trading.service import STORED_WITHOUT_BRANCH

COINS = ["bitcoin", "ethereum", "litecoin"]
DAY = "2017-07-15"

pytestmark = pytest.mark.postgres


def stored(url: str) -> dict[str, dict]:
    """The project DB's predictions of ``DAY``, by coin (one row per coin, or the test fails)."""
    rows = storage.get_predictions(as_of=DAY, url=url)
    by_coin = {row["coin"]: row for row in rows}
    assert len(by_coin) == len(rows), [(r["coin"], r["model"], r["version"]) for r in rows]
    return by_coin


def run_twice(deployment, dag_id: str, coins: list[str] = COINS) -> tuple[dict, dict]:
    """Run ``dag_id`` twice; assert both succeed and the second wrote nothing. The first run's
    result and the rows."""
    first = deployment.run(dag_id)
    assert first["state"] == "success", (first["tasks"], first["log"][-6000:])
    rows = stored(deployment.url)
    assert sorted(rows) == sorted(coins)
    assert {row["run_id"] for row in rows.values()} == {first["run_id"]}
    trades = storage.get_trade_requests(as_of=DAY, url=deployment.url)
    orders = storage.count_rows("paper_orders", deployment.url)

    second = deployment.run(dag_id)
    assert second["state"] == "success", (second["tasks"], second["log"][-6000:])
    assert second["run_id"] != first["run_id"]
    assert stored(deployment.url) == rows  # same rows: same run id, values, decision, decided_at
    assert storage.get_trade_requests(as_of=DAY, url=deployment.url) == trades
    assert storage.count_rows("paper_orders", deployment.url) == orders
    return first, rows


def test_store_only_three_coins(deployment):
    first, rows = run_twice(deployment, "store_only")
    for coin, row in rows.items():
        assert row["model"] == "drift" and len(row["values"]) == 10
        assert (row["decision"], row["decision_reason"]) == ("store", STORED_WITHOUT_BRANCH)
        report = first["returns"][f"store_{coin}"]
        assert report["coin"] == coin and report["outcome"]["decision"] == "store"
        assert report["forecast"] == [round(v, 6) for v in row["values"]]
    assert storage.count_rows("trade_requests", deployment.url) == 0
    assert "crypto_ml.predict" in deployment.worker.log()


def test_branch_then_store_or_trade(deployment):
    first, rows = run_twice(deployment, "branch_store_trade", ["bitcoin", "ethereum", "ark"])
    tasks = first["tasks"]
    trades = {t["coin"]: t for t in storage.get_trade_requests(as_of=DAY, url=deployment.url)}
    for coin, row in rows.items():
        decision = row["decision"]
        assert decision in ("store", "trade") and row["decision_reason"] != STORED_WITHOUT_BRANCH  # decide's
        ran, skipped = (
            (f"trade_{coin}", f"store_{coin}") if decision == "trade" else (f"store_{coin}", f"trade_{coin}")
        )
        assert (tasks[ran], tasks[skipped]) == ("success", "skipped"), tasks
        outcome = first["returns"][ran]["outcome"]
        assert (outcome["decision"], outcome["reason"]) == (decision, row["decision_reason"])
        if decision == "trade":
            assert trades[coin]["status"] == "filled" and outcome["status"] == "filled"
        else:
            assert coin not in trades and outcome["duplicate"]  # store after decide: nothing written
    assert storage.count_rows("paper_orders", deployment.url) == len(trades)
    assert {coin: row["decision"] for coin, row in rows.items()} == {
        "bitcoin": "store",
        "ethereum": "store",
        "ark": "trade",
    }  # drift's +0.6 %, +1.4 %, +7.9 %


def test_the_kill_switch_stores_every_coin_and_sends_nothing(deployment):
    first = deployment.run("branch_store_trade", AIRFLOW_VAR_CRYPTO_ML_KILL_SWITCH="true")
    assert first["state"] == "success", (first["tasks"], first["log"][-6000:])
    for coin, row in stored(deployment.url).items():
        assert row["decision"] == "store" and "kill switch" in row["decision_reason"]
        assert (first["tasks"][f"store_{coin}"], first["tasks"][f"trade_{coin}"]) == ("success", "skipped")
    # Switched off again: the recorded decisions stand, nothing is traded on a re-run.
    second = deployment.run("branch_store_trade")
    assert {t: s for t, s in second["tasks"].items() if t.startswith("trade_")} == {
        f"trade_{coin}": "skipped" for coin in ("bitcoin", "ethereum", "ark")
    }
    assert storage.count_rows("trade_requests", deployment.url) == 0
    assert storage.count_rows("paper_orders", deployment.url) == 0


def test_submit_waiting_for_its_result_then_store(deployment):
    first, rows = run_twice(deployment, "submit_wait_store")
    for coin, row in rows.items():
        assert first["tasks"][f"predict_{coin}"] == "success"
        assert first["returns"][f"predict_{coin}"]["coin"] == coin  # the engine's result, not its task id
        assert (row["decision"], row["decision_reason"]) == ("store", STORED_WITHOUT_BRANCH)
    assert storage.count_rows("trade_requests", deployment.url) == 0


def test_a_task_group_per_coin(deployment):
    first, rows = run_twice(deployment, "coin_groups")
    assert first["returns"]["summary"] == {coin: "store" for coin in COINS}
    for coin, row in rows.items():
        assert first["tasks"][f"{coin}.store"] == "success"
        assert first["returns"][f"{coin}.store"]["forecast"] == [round(v, 6) for v in row["values"]]

"""``crypto-ml engine stats``'s queues (:mod:`crypto_ml.engine.monitor`): the messages waiting in
each queue and the workers consuming it, on real workers, embedded and Redis."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _send_trains(app, n: int) -> None:
    from crypto_ml.engine.protocol import TRAIN_TASK

    for i in range(n):
        app.send_task(
            TRAIN_TASK,
            kwargs={"coin": "bitcoin", "as_of": f"2017-06-{i + 1:02d}", "model": "naive"},
            queue="train",
            routing_key="train",
        )


@pytest.mark.parametrize("broker", ["embedded", "redis"], indirect=True)
def test_the_overview_counts_the_waiting_messages_and_names_the_consumers(broker, start_worker):
    """A worker on predict,heavy only: train's messages wait (counted), nobody consumes train."""
    from crypto_ml.engine.monitor import format_overview, queue_overview

    worker = start_worker(broker, queues="predict,heavy", concurrency=1)
    _send_trains(worker.app, 3)
    overview = queue_overview(worker.app, timeout=10 if broker.kind == "embedded" else 3)
    rows = {row["name"]: row for row in overview["queues"]}
    assert list(rows) == ["predict", "train", "heavy"]
    assert overview["broadcast"] is (broker.kind == "redis")
    assert rows["train"]["messages"] == 3 and rows["train"]["workers"] == []
    assert "no worker answered" in rows["train"]["note"]
    assert rows["predict"]["workers"] == [worker.node] and rows["heavy"]["workers"] == [worker.node]
    assert rows["predict"]["messages"] == 0 and rows["heavy"]["messages"] == 0
    text = format_overview(overview)
    assert (
        "train           3  none: no worker answered" in text and f"heavy           0  {worker.node}" in text
    )


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_engine_stats_prints_the_queues_and_a_pool_process(broker, start_worker, monkeypatch, capsys):
    from crypto_ml.cli import main

    workers = [start_worker(broker, queues=q, concurrency=1) for q in ("predict,train,heavy", "heavy")]
    for name in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND", "CRYPTO_ML_ENGINE_KEY_PREFIX"):
        monkeypatch.setenv(name, workers[0].env[name])
    import crypto_ml.engine.app as engine_app

    monkeypatch.setattr(engine_app, "app", workers[0].app)  # the worker's app, built from these settings
    assert main(["engine", "stats", "--json", "--timeout", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["name"]: row for row in data["queues"]["queues"]}
    assert rows["heavy"]["workers"] == sorted(w.node for w in workers)
    assert rows["train"]["workers"] == rows["predict"]["workers"] == [workers[0].node]
    assert data["process"]["hostname"] == workers[0].node

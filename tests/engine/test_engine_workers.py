"""The engine through real brokers and real ``celery -A crypto_ml worker`` processes."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

# kombu's SQLAlchemy transport uses a loader strategy that SQLAlchemy 2.1 deprecates (not ours)
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

COINS = ["bitcoin", "ethereum", "ripple"]
AS_OF = "2017-06-30"


def _wait_state(worker, task_id, states, timeout=60.0):
    from crypto_ml.engine.client import get_state

    deadline = time.monotonic() + timeout
    while True:
        state, value = get_state(task_id, app=worker.app)
        if state in states:
            return state, value
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} still {state} ({value}); worker log:\n{worker.log()[-3000:]}")
        time.sleep(0.1)


def test_predict_and_train_through_the_broker(broker, start_worker, engine_env):
    from crypto_ml.engine.client import submit_predict, submit_train, wait
    from crypto_ml.storage import count_rows

    worker = start_worker(broker)
    ids = [
        submit_predict(coin=c, as_of=AS_OF, model=m, horizon=5, run_id="test", app=worker.app)
        for c in COINS
        for m in ("naive", "linear")
    ]
    results = [wait(i, timeout=60, app=worker.app) for i in ids]
    assert {(r["coin"], r["model"]) for r in results} == {(c, m) for c in COINS for m in ("naive", "linear")}
    for r in results:
        assert r["as_of"] == AS_OF and len(r["values"]) == 5 and r["hostname"] == worker.node
        assert r["pid"] != worker.proc.pid  # ran in a pool child, not the main process
    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    assert count_rows("predictions", url) == 0  # the engine computes; the pipeline stores

    trained = wait(submit_train(coin="bitcoin", as_of=AS_OF, model="linear", app=worker.app), app=worker.app)
    assert trained["saved"] and trained["version"] >= 1
    again = wait(
        submit_predict(coin="bitcoin", as_of=AS_OF, model="linear", horizon=5, app=worker.app), app=worker.app
    )
    assert again["version"] == trained["version"]
    assert again["values"] == pytest.approx(
        next(r for r in results if r["coin"] == "bitcoin" and r["model"] == "linear")["values"]
    )
    assert count_rows("model_versions", url) == 1


def test_killed_worker_process_redelivers_and_writes_nothing(fault_broker, start_worker, engine_env):
    """kill -9 the pool process running a predict task: the task is requeued (acks_late +
    reject_on_worker_lost), completes on another process, and the engine wrote nothing (the
    pipeline is the one writer of predictions)."""
    from crypto_ml.engine.client import submit_predict
    from crypto_ml.storage import count_rows

    worker = start_worker(fault_broker, env={"CRYPTO_ML_ENGINE_TEST_DELAY": "3"})
    task_id = submit_predict(coin="bitcoin", as_of=AS_OF, model="linear", horizon=3, app=worker.app)
    _, info = _wait_state(worker, task_id, {"STARTED"})
    victim = info["pid"]
    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    time.sleep(1.5)  # the forecast is computed, the task sleeps (the test delay): kill it now
    os.kill(victim, signal.SIGKILL)
    state, result = _wait_state(worker, task_id, {"SUCCESS"}, timeout=90)
    assert result["pid"] != victim
    assert count_rows("predictions", url) == 0
    log = worker.log()
    assert "WorkerLostError" in log or "signal 9" in log
    assert worker.alive()


def test_malformed_messages_are_rejected_and_the_worker_survives(embedded_broker, start_worker, engine_env):
    from kombu import Connection

    from crypto_ml.engine.client import get_state, submit_predict, submit_train, wait

    worker = start_worker(embedded_broker, queues="predict", concurrency=1)
    app = worker.app
    # A message whose body is not JSON, without Celery headers, and one with Celery headers.
    raw_id, pickle_id = str(uuid.uuid4()), str(uuid.uuid4())
    # declare=: kombu's virtual transports route by the publisher's own declared bindings
    queue = app.amqp.queues["predict"]
    with Connection(embedded_broker.broker_url) as conn:
        producer = conn.Producer()
        producer.publish(
            b"{this is not json",
            exchange="predict",
            routing_key="predict",
            content_type="application/json",
            content_encoding="utf-8",
            declare=[queue],
        )
        producer.publish(
            b"{this is not json",
            exchange="predict",
            routing_key="predict",
            content_type="application/json",
            content_encoding="utf-8",
            headers={
                "task": "crypto_ml.predict",
                "id": raw_id,
                "lang": "py",
                "argsrepr": "",
                "kwargsrepr": "",
            },
            declare=[queue],
        )
        producer.publish(
            b"\x80\x04K\x01.",
            exchange="predict",
            routing_key="predict",
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"task": "crypto_ml.predict", "id": pickle_id, "lang": "py"},
            declare=[queue],
        )
    # Wrong types, unknown coin, unknown field, positional args: clear, non-retried failures.
    send = app.send_task
    bad = {
        send(
            "crypto_ml.predict", kwargs={"coin": "bitcoin", "horizon": "ten"}, queue="predict"
        ).id: "coin 'bitcoin': horizon must be a positive int",
        send(
            "crypto_ml.predict", kwargs={"coin": "dogecoinz", "horizon": 3}, queue="predict"
        ).id: "unknown coin 'dogecoinz'",
        send(
            "crypto_ml.predict", kwargs={"coin": "bitcoin", "colour": "red"}, queue="predict"
        ).id: "unknown field(s) colour",
        send("crypto_ml.predict", args=["bitcoin"], queue="predict").id: "keyword arguments only",
        send(
            "crypto_ml.predict",
            kwargs={"coin": "bitcoin", "as_of": "2013-04-29", "model": "ar"},
            queue="predict",
        ).id: "coin 'bitcoin': only 2 closes up to 2013-04-29",
    }
    send("crypto_ml.no_such_task", kwargs={}, queue="predict")
    train_id = submit_train(coin="bitcoin", as_of=AS_OF, model="linear", app=app)  # no train consumer
    good = submit_predict(coin="ethereum", as_of=AS_OF, model="naive", horizon=2, app=app)
    assert wait(good, timeout=60, app=app)["coin"] == "ethereum"
    for task_id, message in bad.items():
        state, error = _wait_state(worker, task_id, {"FAILURE", "SUCCESS"})
        assert state == "FAILURE" and "EngineInputError" in error and message in error, error
        assert app.AsyncResult(task_id).retries in (0, None)
    log = worker.log()
    # rejected by the consumer with a clear error, before any pool process sees them
    assert "Can't decode message body: DecodeError" in log and raw_id in log
    assert "Received invalid task message: Refusing to deserialize untrusted content of type pickle" in log
    assert get_state(raw_id, app=app)[0] == get_state(pickle_id, app=app)[0] == "PENDING"
    log = worker.log()
    assert "unregistered task" in log
    assert "Retry in" not in log
    assert worker.alive()
    # the predict-only worker never took the train task: sent, it waits for a train worker
    assert get_state(train_id, app=app)[0] == "SENT"


def test_lstm_in_prefork_children(embedded_broker, start_worker, engine_env):
    """The talk's LSTM (50 -> 100 -> Dense, 1 epoch) trains and predicts inside prefork children:
    TensorFlow is imported in each child, never in the parent before the fork."""
    from crypto_ml.engine.client import submit_predict, wait

    worker = start_worker(embedded_broker, concurrency=2)
    ids = [
        submit_predict(coin=c, as_of=AS_OF, model="lstm", horizon=3, params={"epochs": 1}, app=worker.app)
        for c in ("bitcoin", "ethereum")
    ]
    results = [wait(i, timeout=120, app=worker.app) for i in ids]
    assert all(len(r["values"]) == 3 and r["pid"] != worker.proc.pid for r in results)
    warm = wait(
        submit_predict(
            coin="bitcoin", as_of=AS_OF, model="lstm", horizon=3, params={"epochs": 1}, app=worker.app
        ),
        timeout=120,
        app=worker.app,
    )
    first = results[0]
    if warm["pid"] == first["pid"]:
        assert warm["cached"] and warm["values"] == pytest.approx(first["values"])
    else:  # the other child fitted it: same seed, same data, same forecast
        assert warm["values"] == pytest.approx(first["values"], rel=1e-4)
    assert "TensorFlow was imported in the parent" not in worker.log()

    def maps(pid):
        return Path(f"/proc/{pid}/maps").read_text()

    if Path(f"/proc/{worker.proc.pid}/maps").exists():
        assert "libtensorflow" not in maps(worker.proc.pid)  # the parent never loaded TF
        assert all("libtensorflow" in maps(r["pid"]) for r in results if Path(f"/proc/{r['pid']}").exists())


def test_transient_database_error_is_retried_until_it_succeeds(embedded_broker, start_worker, tmp_path):
    """The project database cannot be opened (its folder is missing): OperationalError is retried
    with backoff; once the folder exists the same task succeeds (it looks up stored model versions
    there, and writes no prediction)."""
    from crypto_ml.engine.client import submit_predict, wait
    from crypto_ml.storage import count_rows

    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'crypto_ml.db'}"
    worker = start_worker(
        embedded_broker,
        concurrency=1,
        env={
            "CRYPTO_ML_DATABASE_URL": url,
            "CRYPTO_ML_ENGINE_MAX_RETRIES": "8",
            "CRYPTO_ML_ENGINE_RETRY_BACKOFF_MAX": "2",
        },
    )
    task_id = submit_predict(coin="bitcoin", as_of=AS_OF, model="naive", horizon=2, app=worker.app)
    _wait_state(worker, task_id, {"RETRY"})
    assert "OperationalError" in worker.log() and "Retry in" in worker.log()
    folder.mkdir()
    result = wait(task_id, timeout=60, app=worker.app)
    assert result["coin"] == "bitcoin"
    assert worker.app.AsyncResult(task_id).retries >= 1
    assert count_rows("model_versions", url) == 0 and count_rows("predictions", url) == 0


def test_a_submit_that_may_not_defer_waits_for_the_result_on_the_worker(
    embedded_broker, start_worker, monkeypatch
):
    """deferrable=False (a deployment without a triggerer): wait_for_completion polls the engine from
    the Airflow worker; the result is the task's, an engine failure fails the task (no retry helps)."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from crypto_ml.operators.engine import EngineSubmitOperator

    worker = start_worker(embedded_broker, queues="predict", concurrency=1)
    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", embedded_broker.broker_url)
    monkeypatch.setenv("CRYPTO_ML_RESULT_BACKEND", embedded_broker.result_backend)

    def run(coin):
        op = EngineSubmitOperator(
            task_id="submit",
            coin=coin,
            as_of=AS_OF,
            model="naive",
            horizon=2,
            wait_for_completion=True,
            deferrable=False,
            start_from_trigger=True,
            poll_interval=0.5,
            timeout=60,
        )
        assert not op.start_from_trigger  # sending from the triggerer needs deferrable
        ti = SimpleNamespace(dag_id="d", run_id=coin, task_id="submit", map_index=-1, try_number=1)
        return op.execute({"ti": ti, "dag_run": None})

    result = run("ethereum")
    assert result["coin"] == "ethereum" and len(result["values"]) == 2 and result["hostname"] == worker.node
    with pytest.raises(AirflowFailException, match="FAILURE: EngineInputError: unknown coin 'dogecoinz'"):
        run("dogecoinz")

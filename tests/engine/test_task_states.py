"""A task's state from its sending: ``SENT`` until a worker starts it, then Celery's own; an id
the result backend never heard of is ``PENDING``, which ``crypto-ml engine status`` answers as
unknown (exit 1) instead of a plausible "PENDING", exit 0."""

from __future__ import annotations

import uuid

from crypto_ml.cli import main


def test_a_sent_task_is_sent_then_done_and_an_unknown_id_is_unknown(
    embedded_broker, start_worker, engine_env, monkeypatch, capsys
):
    from crypto_ml.engine.client import SENT, get_state, sender_app, submit_predict, wait

    for name, value in {
        **engine_env,
        "CRYPTO_ML_BROKER_URL": embedded_broker.broker_url,
        "CRYPTO_ML_RESULT_BACKEND": embedded_broker.result_backend,
    }.items():
        monkeypatch.setenv(name, value)
    app = sender_app()  # the environment's engine, as the CLI's
    task_id = submit_predict(coin="bitcoin", as_of="2017-06-01", model="naive", horizon=3, app=app)
    assert get_state(task_id, app=app)[0] == SENT  # no worker yet: sent, not unknown
    start_worker(embedded_broker, queues="predict", concurrency=1)
    assert wait(task_id, timeout=120, app=app)["coin"] == "bitcoin"
    assert get_state(task_id, app=app)[0] == "SUCCESS"
    again = submit_predict(
        coin="bitcoin", as_of="2017-06-01", model="naive", horizon=3, task_id=task_id, app=app
    )  # a re-send of a known id does not reset its state to SENT
    assert again == task_id and get_state(task_id, app=app)[0] in ("SUCCESS", "STARTED")

    unknown = str(uuid.uuid4())
    assert main(["engine", "status", unknown]) == 1
    assert f"crypto-ml engine status: error: unknown task id '{unknown}'" in capsys.readouterr().err
    assert main(["engine", "status", task_id]) == 0
    assert '"state": "SUCCESS"' in capsys.readouterr().out

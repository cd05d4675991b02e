"""The engine wait: trigger serialization, deferral, and a wait that can never hang."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from crypto_ml.sensors.engine import EngineTaskSensor
from crypto_ml.triggers.engine import EngineTaskTrigger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_connection_lookups():
    """The triggers share Connection lookups per process (``connection_ttl``): each test starts
    with none."""
    from crypto_ml.hooks.engine import CryptoEngineHook

    CryptoEngineHook.forget_connections()
    yield
    CryptoEngineHook.forget_connections()


@pytest.fixture
def engine_env(tmp_path, monkeypatch):
    """An embedded broker nobody consumes: tasks stay PENDING forever."""
    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    monkeypatch.setenv("CRYPTO_ML_RESULT_BACKEND", f"db+sqlite:///{tmp_path / 'results.db'}")
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))


def test_trigger_serialize_round_trip():
    trigger = EngineTaskTrigger(
        engine_task_id="abc",
        engine_conn_id="eng",
        poll_interval=0.5,
        timeout=30,
        started_at=1000.0,
        max_errors=3,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "crypto_ml.triggers.engine.EngineTaskTrigger"
    assert kwargs == {
        "engine_task_id": "abc",
        "engine_conn_id": "eng",
        "poll_interval": 0.5,
        "first_poll": 0.05,
        "timeout": 30,
        "started_at": 1000.0,
        "max_errors": 3,
        "end_task": False,
    }
    assert EngineTaskTrigger(**kwargs).serialize() == (classpath, kwargs)


def run_trigger(trigger):
    async def first_event():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first_event())


def test_trigger_times_out_when_no_worker_answers(engine_env):
    from crypto_ml.engine.client import submit_predict

    task_id = submit_predict(coin="bitcoin", as_of="2017-06-05", model="naive", horizon=3)
    started = time.monotonic()
    event = run_trigger(EngineTaskTrigger(engine_task_id=task_id, poll_interval=0.2, timeout=1.5))
    assert event["status"] == "timeout" and event["state"] == "SENT"  # sent, never taken
    assert "no engine worker took it" in event["message"]
    assert 1.5 <= time.monotonic() - started < 30


def test_a_trigger_that_ends_the_task_fails_it_on_timeout(engine_env):
    """end_task=True (the sensor's and the waiting submit's): a timeout ends the task failed in the
    triggerer; an unreachable backend stays a plain event, so the task resumes and retries."""
    from airflow.triggers.base import TaskFailedEvent

    from crypto_ml.engine.client import submit_predict

    task_id = submit_predict(coin="bitcoin", as_of="2017-06-05", model="naive", horizon=3)
    trigger = EngineTaskTrigger(engine_task_id=task_id, poll_interval=0.2, timeout=0.5, end_task=True)

    async def first_event():
        async for event in trigger.run():
            return event

    assert isinstance(asyncio.run(first_event()), TaskFailedEvent)


def test_the_sensor_starts_in_the_triggerer_with_the_submit_output_as_a_template():
    from airflow.sdk import DAG

    from crypto_ml.operators.engine import EngineSubmitOperator

    with DAG("t", schedule=None):
        submit = EngineSubmitOperator(task_id="submit", coin="bitcoin", as_of="2017-06-05")
        sensor = EngineTaskSensor(task_id="wait", engine_task_id=submit.output, engine_conn_id="eng2")
    assert sensor.start_from_trigger and sensor.upstream_task_ids == {"submit"}
    args = sensor.start_trigger_args
    assert args.trigger_cls == "crypto_ml.triggers.engine.EngineTaskTrigger"
    # By map index: the triggerer serves GetXCom, not the every-index GetXComSequenceSlice.
    assert args.trigger_kwargs["engine_task_id"] == (
        "{{ ti.xcom_pull(task_ids='submit', key='return_value', map_indexes=ti.map_index) }}"
    )
    assert args.trigger_kwargs["engine_conn_id"] == "eng2" and args.trigger_kwargs["end_task"] is True
    assert set(sensor.template_fields) == {"engine_task_id", "engine_conn_id"}


def test_trigger_reports_an_unreachable_result_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CRYPTO_ML_RESULT_BACKEND", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path))
    event = run_trigger(EngineTaskTrigger(engine_task_id="x", poll_interval=0.05, timeout=120, max_errors=2))
    assert event["status"] == "error"
    assert "failed 2 times in a row" in event["message"]


def test_sensor_defers_while_pending_and_fails_clearly_on_timeout(engine_env):
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

    from crypto_ml.engine.client import submit_predict

    task_id = submit_predict(coin="bitcoin", as_of="2017-06-05", model="naive", horizon=3)
    sensor = EngineTaskSensor(task_id="wait", engine_task_id=task_id, timeout=60, poke_interval=1)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, EngineTaskTrigger) and trigger.engine_task_id == task_id
    assert deferred.value.method_name == "execute_complete"
    event = {"status": "timeout", "state": "PENDING", "message": "engine task still PENDING after 60 s"}
    with pytest.raises(AirflowSensorTimeout, match="still PENDING after 60 s"):
        sensor.execute_complete(context={}, event=event)


def test_sensor_passes_the_result_and_fails_on_engine_failure():
    from airflow.sdk.exceptions import AirflowFailException

    sensor = EngineTaskSensor(task_id="wait", engine_task_id="t1")
    result = {"coin": "bitcoin", "values": [1.0]}
    assert sensor.execute_complete(context={}, event={"status": "success", "result": result}) == result
    with pytest.raises(AirflowFailException, match="EngineInputError: unknown coin"):
        sensor.execute_complete(
            context={},
            event={"status": "failed", "state": "FAILURE", "message": "EngineInputError: unknown coin 'x'"},
        )


def test_a_dag_run_never_hangs_when_the_engine_never_answers(run_dag, airflow_env, tmp_path):
    """No worker consumes the queue: the deferred sensor fails after its timeout, saying why."""
    from pathlib import Path

    dags = Path(__file__).parent / "dags"
    env = {
        **airflow_env,
        "CRYPTO_ML_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'nobody.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    started = time.monotonic()
    result = run_dag(env, "engine_down", {}, dags=dags)
    assert result.get("state") == "failed", {k: v for k, v in result.items() if k != "log"}
    assert result["tasks"] == {"submit_prediction": "success", "wait_for_prediction": "failed"}
    assert "no engine worker took it" in result["log"]
    assert time.monotonic() - started < 120


class _TI:
    """What the triggerer hands a trigger as ``task_instance`` (the fields the trigger reads)."""

    dag_id, run_id, task_id = "crypto_ml_coin", "bitcoin__2017-06-05", "submit_prediction"
    map_index, try_number = -1, 1


def _events(trigger):
    async def collect():
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_submit_trigger_sends_from_the_triggerer_and_ends_the_task_with_the_id(engine_env):
    """The request arrives as the triggerer renders it (the transform's dict as JSON text, the
    horizon as text); the engine task id is the task instance's, as on a worker."""
    import json

    from airflow.triggers.base import TaskSuccessEvent

    from crypto_ml.engine.client import engine_task_id_of, sender_app
    from crypto_ml.triggers.engine import EngineSubmitTrigger

    transform = {"coin": "bitcoin", "as_of": "2017-06-05", "closes": [2500.0, 2550.5, 2686.81]}
    trigger = EngineSubmitTrigger(closes=json.dumps(transform), model="naive", horizon="3")
    trigger.task_instance = _TI()
    [event] = _events(trigger)
    expected = engine_task_id_of(_TI.dag_id, _TI.run_id, _TI.task_id, _TI.map_index, _TI.try_number)
    assert isinstance(event, TaskSuccessEvent) and event.xcoms == {"return_value": expected}
    # The message is on the engine's queue, with the transform's closes, as JSON (no pickle).
    with sender_app().connection_for_read() as conn:
        message = conn.SimpleQueue("predict", no_ack=True).get(timeout=5)
    assert message.headers["id"] == expected and message.content_type == "application/json"
    kwargs = message.decode()[1]
    assert kwargs["closes"] == transform["closes"] and kwargs["horizon"] == 3 and kwargs["coin"] == "bitcoin"
    classpath, kwargs = trigger.serialize()
    assert classpath == "crypto_ml.triggers.engine.EngineSubmitTrigger"
    assert EngineSubmitTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_submit_trigger_fails_a_bad_request_and_resumes_on_an_unreachable_broker(engine_env, monkeypatch):
    from airflow.triggers.base import TaskFailedEvent

    from crypto_ml.triggers.engine import EngineSubmitTrigger

    bad = EngineSubmitTrigger(coin="bitcoin", as_of="2017-06-05", model="nosuch", horizon=3)
    bad.task_instance = _TI()
    [event] = _events(bad)
    assert isinstance(event, TaskFailedEvent)  # refused before sending: no retry helps

    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    down = EngineSubmitTrigger(coin="bitcoin", as_of="2017-06-05", model="naive", horizon=3)
    down.task_instance = _TI()
    [event] = _events(down)
    assert event.payload["status"] == "error" and "could not send to the engine" in event.payload["message"]


def test_the_coin_dag_sends_from_the_triggerer():
    from airflow.sdk import DAG

    from crypto_ml.operators.engine import EngineSubmitOperator

    with DAG("t", schedule=None):
        from airflow.sdk import task

        @task
        def transform():
            return {}

        out = transform()
        submit = EngineSubmitOperator(task_id="submit", closes=out, model="linear", start_from_trigger=True)
    args = submit.start_trigger_args
    assert args.trigger_cls == "crypto_ml.triggers.engine.EngineSubmitTrigger"
    assert args.trigger_kwargs["closes"] == (
        "{{ ti.xcom_pull(task_ids='transform', key='return_value', map_indexes=ti.map_index) | tojson }}"
    )
    assert args.trigger_kwargs["coin"] is None and args.trigger_kwargs["model"] == "linear"


def test_the_coin_dags_submit_is_a_claim_that_reads_no_xcom():
    """The daily DAG's submit sends a coin and a day (from params), and the engine reads the closes
    the transform validated from the project database: rendering it in the triggerer pulls no XCom
    (a round trip through the triggerer's supervisor), and no price history travels through XCom or
    the broker. The transform still runs first."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "crypto_ml_coin.py")).dags["crypto_ml_coin"]
    submit = dag.get_task("submit_prediction")
    kwargs = submit.start_trigger_args.trigger_kwargs
    assert kwargs["history"] == "database" and kwargs["closes"] is None
    assert "xcom_pull" not in repr(kwargs), kwargs
    assert submit.upstream_task_ids == {"transform"}


def test_an_empty_as_of_is_the_runs_market_day(engine_env):
    """A run triggered by hand without as_of: the submit trigger asks for the market day of the run's
    logical date, as the transform's ``market_day`` macro does (the replay: the replayed history day)."""
    import datetime as dt
    from types import SimpleNamespace

    from crypto_ml.engine.client import sender_app
    from crypto_ml.pipeline.catalog import market_day_iso
    from crypto_ml.triggers.engine import EngineSubmitTrigger

    logical = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)

    class _Run(_TI):
        def get_template_context(self):
            return {"dag_run": SimpleNamespace(logical_date=logical, run_after=logical)}

    trigger = EngineSubmitTrigger(coin="bitcoin", as_of="", history="database", model="naive", horizon=3)
    trigger.task_instance = _Run()
    [event] = _events(trigger)
    assert event.xcoms, event
    with sender_app().connection_for_read() as conn:
        message = conn.SimpleQueue("predict", no_ack=True).get(timeout=5)
    kwargs = message.decode()[1]
    assert kwargs["as_of"] == market_day_iso(logical) and kwargs["history"] == "database"
    assert "closes" not in kwargs


def test_every_task_of_a_run_names_the_day_whose_candle_had_closed_when_the_run_was_created(monkeypatch):
    """An exchange market, a run created by hand at 23:59:59 UTC without as_of: today's candle is
    still forming, so the run predicts yesterday. The transform (its ``market_day`` macro) and the
    submit trigger (:func:`run_market_day`) name that day whenever they start, after midnight or
    when the run is cleared days later: the clock is the run's ``run_after``, not the wall clock."""
    import datetime as dt
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    from crypto_ml.pipeline.catalog import run_market_day

    monkeypatch.setenv("AIRFLOW_CONN_CRYPTO_ML_MARKET", "crypto-ml-market://binance?symbols=BTC/USDT")
    created = dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=dt.UTC)  # days before today
    run = SimpleNamespace(logical_date=created, run_after=created)
    assert run_market_day(run) == "2026-11-29"
    assert run_market_day(SimpleNamespace(logical_date=None, run_after=created)) == "2026-11-29"

    dag = DagBag(dag_folder=str(ROOT / "dags" / "crypto_ml_coin.py")).dags["crypto_ml_coin"]
    template = dag.get_task("transform").as_of
    rendered = dag.get_template_env().from_string(template).render(params={"as_of": None}, dag_run=run)
    assert rendered == "2026-11-29"
    given = dag.get_template_env().from_string(template).render(params={"as_of": "2026-11-30"}, dag_run=run)
    assert given == "2026-11-30"


def test_rendered_text_is_decoded_or_refused_with_what_it_was(engine_env):
    from airflow.triggers.base import TaskFailedEvent

    from crypto_ml.triggers.engine import EngineSubmitTrigger, decode_rendered

    assert decode_rendered('{"coin": "ark"}') == {"coin": "ark"} and decode_rendered('"abc"') == "abc"
    assert decode_rendered("") == "" and decode_rendered("bitcoin") == "bitcoin"
    assert decode_rendered([1]) == [1]
    with pytest.raises(ValueError, match="not JSON: \"{'coin': 'ark'}\""):
        decode_rendered("{'coin': 'ark'}")  # a dict's Python repr: the template lacks | tojson
    broken = EngineSubmitTrigger(closes="{'coin': 'ark'}", model="naive", horizon=3)
    broken.task_instance = _TI()
    [event] = _events(broken)
    assert isinstance(event, TaskFailedEvent)  # refused before anything was sent


def test_a_trigger_looks_the_engine_connection_up_once_however_often_it_polls(engine_env, monkeypatch):
    """In the triggerer every Connection lookup is a round trip through its supervisor and the
    execution API to the metadata DB: the submit and each wait look it up once, not per poll."""
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.triggers.base import TaskFailedEvent

    from crypto_ml.hooks.engine import CryptoEngineHook
    from crypto_ml.triggers.engine import EngineSubmitTrigger

    lookups = []

    def not_defined(cls, conn_id):
        lookups.append(conn_id)
        raise AirflowNotFoundException(conn_id)  # the embedded default: the environment's engine

    monkeypatch.setattr(CryptoEngineHook, "get_connection", classmethod(not_defined))
    submit = EngineSubmitTrigger(
        coin="bitcoin",
        as_of="2017-06-05",
        model="naive",
        horizon=3,
        wait=True,
        first_poll=0.01,
        poll_interval=0.05,
        timeout=0.6,
    )
    submit.task_instance = _TI()
    [event] = _events(submit)  # sends, then polls a queue nobody consumes until the timeout
    assert isinstance(event, TaskFailedEvent)
    assert lookups == ["crypto_ml_engine"]


def test_the_triggers_of_one_triggerer_share_a_connection_lookup_for_its_ttl(
    engine_env, monkeypatch, tmp_path
):
    """A coin's submit and wait, and every other coin's, reuse one lookup of the engine
    Connection for ENGINE_CONNECTION_TTL seconds; after that the next trigger looks it up again
    (a Connection changed in the UI applies). A missing non-default Connection is never reused:
    every trigger that needs it fails, naming it."""
    import types

    from airflow.sdk.definitions.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from crypto_ml.hooks import engine as hooks
    from crypto_ml.hooks.engine import CryptoEngineHook
    from crypto_ml.triggers.engine import ENGINE_CONNECTION_TTL

    lookups = []
    broker = {"url": f"sqla+sqlite:///{tmp_path / 'connection-broker.db'}"}

    def defined(cls, conn_id):
        lookups.append(conn_id)
        if conn_id != "crypto_ml_engine":
            raise AirflowNotFoundException(conn_id)
        return Connection(conn_id=conn_id, conn_type="crypto_ml_engine", host=broker["url"])

    monkeypatch.setattr(CryptoEngineHook, "get_connection", classmethod(defined))
    configs = [EngineTaskTrigger(engine_task_id=f"t{i}").hook.get_config() for i in range(3)]
    assert {c.broker_url for c in configs} == {broker["url"]}
    assert lookups == ["crypto_ml_engine"]

    # After the TTL the next trigger looks again and sees the changed Connection (the hook
    # module's clock, not the process's, is the one moved).
    clock = [1000.0]
    monkeypatch.setattr(hooks, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    CryptoEngineHook.forget_connections()
    EngineTaskTrigger(engine_task_id="a").hook.get_config()
    broker["url"] = broker["url"] + "-changed"
    clock[0] += ENGINE_CONNECTION_TTL - 1
    assert EngineTaskTrigger(engine_task_id="b").hook.get_config().broker_url != broker["url"]
    clock[0] += 2.0
    assert EngineTaskTrigger(engine_task_id="c").hook.get_config().broker_url == broker["url"]
    assert lookups == ["crypto_ml_engine"] * 3

    # A hook without a TTL (a task on a worker) always looks up.
    CryptoEngineHook().get_config()
    assert lookups == ["crypto_ml_engine"] * 4
    for _ in range(2):
        with pytest.raises(AirflowNotFoundException, match="'elsewhere' is not defined"):
            EngineTaskTrigger(engine_task_id="d", engine_conn_id="elsewhere").hook.get_config()
    assert lookups[-2:] == ["elsewhere", "elsewhere"]


def test_the_projects_dags_defer_as_its_airflow_cfg_says():
    """Deferrable is the deployment's choice ([operators] default_deferrable, as Airflow's providers
    read it), and the project's airflow.cfg makes it: the coin DAG's submit and wait start and end in
    the triggerer, the training waits there."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import conf

    assert conf.getboolean("operators", "default_deferrable") is True
    dags = DagBag(dag_folder=str(ROOT / "dags")).dags
    coin = dags["crypto_ml_coin"]
    assert coin.get_task("submit_prediction").start_from_trigger
    assert coin.get_task("wait_for_prediction").start_from_trigger
    train = dags["crypto_ml_train"].get_task("train").unmap({"coin": "bitcoin", "as_of": "2017-06-30"})
    assert train.wait_for_completion and train.deferrable


def test_without_the_deployments_default_the_engine_tasks_do_not_defer(tmp_path):
    """Read from Airflow's config when the classes are defined, as the providers' defaults are."""
    import os
    import subprocess
    import sys

    code = (
        "from crypto_ml.operators.engine import EngineSubmitOperator as S\n"
        "from crypto_ml.sensors.engine import EngineTaskSensor as W\n"
        "s = S(task_id='s', coin='bitcoin', start_from_trigger=True, wait_for_completion=True)\n"
        "w = W(task_id='w', engine_task_id='x')\n"
        "print(s.deferrable, s.start_from_trigger, w.deferrable, w.start_from_trigger, w.mode)\n"
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False", "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False", "False", "False", "reschedule"]

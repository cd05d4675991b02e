"""The engine without a broker: config, cache, validation and run_predict / run_train."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_config_defaults_are_embedded_and_json_only(tmp_path):
    from crypto_ml.settings.engine import EngineConfig

    cfg = EngineConfig.from_env({"CRYPTO_ML_HOME": str(tmp_path)})
    settings = cfg.celery_settings()
    assert settings["broker_url"].startswith("sqla+sqlite:///") and settings["broker_url"].endswith(
        "engine-broker.db"
    )
    assert settings["result_backend"].startswith("db+sqlite:///")
    assert settings["task_serializer"] == settings["result_serializer"] == "json"
    assert settings["accept_content"] == settings["result_accept_content"] == ["json"]
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 16  # the embedded, polled broker (1 on Redis)
    assert settings["task_routes"]["crypto_ml.predict"]["queue"] == "predict"
    assert settings["task_routes"]["crypto_ml.train"]["queue"] == "train"
    # kombu passes these to create_engine() for sqla+ URLs: no Redis-style options
    assert set(settings["broker_transport_options"]) <= {"connect_args"}


def test_config_env_overrides():
    from crypto_ml.settings.engine import EngineConfig

    cfg = EngineConfig.from_env(
        {
            "CRYPTO_ML_BROKER_URL": "redis://127.0.0.1:6379/3",
            "CRYPTO_ML_RESULT_BACKEND": "redis://127.0.0.1:6379/4",
            "CRYPTO_ML_ENGINE_CACHE_SIZE": "7",
            "CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT": "30",
            "CRYPTO_ML_ENGINE_KEY_PREFIX": "p:",
        }
    )
    assert cfg.cache_size == 7
    settings = cfg.celery_settings()
    assert settings["broker_transport_options"] == {"visibility_timeout": 30, "global_keyprefix": "p:"}
    assert settings["result_backend_transport_options"] == {"global_keyprefix": "p:"}
    assert settings["worker_prefetch_multiplier"] == 1  # Redis: one message at a time per process
    with pytest.raises(ValueError, match="CRYPTO_ML_ENGINE_CACHE_SIZE must be an int"):
        EngineConfig.from_env({"CRYPTO_ML_ENGINE_CACHE_SIZE": "lots"})
    with pytest.raises(ValueError, match="cache_size must be >= 1"):
        EngineConfig.from_env({"CRYPTO_ML_ENGINE_CACHE_SIZE": "0"})


def test_package_import_is_free_of_celery_and_tensorflow():
    code = (
        "import sys, crypto_ml, crypto_ml.engine, crypto_ml.engine.cache, crypto_ml.engine.request, "
        "crypto_ml.engine.client, crypto_ml.engine.service; "
        "print('celery' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_importing_the_tasks_builds_no_app_and_reads_no_setting():
    """Only the worker's app module builds an app at import; the tasks bind to it when it includes
    them, and take their retry budget from its configuration."""
    code = (
        "import os, sys, celery\n"
        "import crypto_ml.engine.tasks\n"
        "print('crypto_ml.engine.app' in sys.modules, celery.current_app.main)\n"
        "os.environ['CRYPTO_ML_ENGINE_MAX_RETRIES'] = '9'\n"
        "from crypto_ml.engine.app import app\n"
        "print(app.tasks['crypto_ml.predict'].max_retries, app.tasks['crypto_ml.train'].retry_backoff_max)\n"
    )
    env = {**os.environ, "CRYPTO_ML_ENGINE_RETRY_BACKOFF_MAX": "7"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "default", "9", "7"]


def test_celery_finds_the_app():
    from crypto_ml.engine.app import app

    assert app.main == "crypto_ml"
    app.loader.import_default_modules()  # what the worker does with include=[...]
    assert {"crypto_ml.predict", "crypto_ml.train"} <= set(app.tasks)


def test_model_cache_is_a_bounded_lru():
    from crypto_ml.engine.cache import ModelCache

    cache = ModelCache(2)
    loads = []
    for key in ["a", "b", "a", "c", "b"]:
        cache.get_or_load(key, lambda key=key: loads.append(key) or key.upper())
    assert len(cache) == 2 and cache.keys() == ["c", "b"]
    assert loads == ["a", "b", "c", "b"]  # "b" was evicted by "c" ("a" had been used more recently)
    assert cache.stats()["evictions"] == 2


def test_run_predict_computes_only_and_warms_the_cache(engine_env, monkeypatch):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict
    from crypto_ml.storage import count_rows, get_predictions

    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    cache = ModelCache(8)
    first = run_predict(
        EngineRequest(coin="BTC", as_of="2017-06-30", model="linear", horizon=5), url=url, cache=cache
    )
    again = run_predict(
        EngineRequest(coin="bitcoin", as_of="2017-06-30", model="linear", horizon=5), url=url, cache=cache
    )
    assert first["coin"] == "bitcoin" and first["as_of"] == "2017-06-30" and first["version"] == 0
    assert not first["cached"] and again["cached"]
    assert again["values"] == first["values"] and len(first["values"]) == 5
    assert first["expected_return"] == pytest.approx(first["values"][-1] / first["last_close"] - 1)
    # The engine computes; the pipeline's decide task is the one writer of predictions.
    assert count_rows("predictions", url) == 0 and get_predictions(coin="bitcoin", url=url) == []
    naive = run_predict(
        EngineRequest(coin="ETH", as_of="2017-06-30", model="naive", horizon=3), url=url, cache=cache
    )
    assert naive["values"] == [naive["last_close"]] * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coin": "no-such-coin"}, "unknown coin 'no-such-coin'"),
        ({"coin": 42}, "coin must be a non-empty string, got 42 (int)"),
        ({"coin": "bitcoin", "horizon": "ten"}, "coin 'bitcoin': horizon must be a positive int"),
        ({"coin": "bitcoin", "horizon": 0}, "horizon must be a positive int"),
        ({"coin": "bitcoin", "horizon": True}, "horizon must be a positive int"),
        ({"coin": "bitcoin", "horizon": 10_000}, "exceeds the maximum"),
        ({"coin": "bitcoin", "model": "gpt"}, "unknown model 'gpt'; valid models: naive, drift"),
        ({"coin": "bitcoin", "as_of": "yesterday"}, "as_of must be an ISO date"),
        ({"coin": "bitcoin", "as_of": "2013-04-29", "model": "ar"}, "coin 'bitcoin': only 2 closes up to"),
        ({"coin": "bitcoin", "as_of": "2001-01-01"}, "coin 'bitcoin': no closes on or before 2001-01-01"),
        ({"coin": "bitcoin", "params": {"nope": 1}}, "bad params for model 'naive'"),
    ],
)
def test_bad_input_is_a_clear_non_retryable_error(engine_env, kwargs, message):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.protocol import EngineInputError
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict
    from crypto_ml.engine.tasks import TRANSIENT_ERRORS

    with pytest.raises(EngineInputError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        run_predict(EngineRequest(**kwargs), url=engine_env["CRYPTO_ML_DATABASE_URL"], cache=ModelCache(2))
    assert not isinstance(info.value, TRANSIENT_ERRORS)


def test_run_train_warms_the_predict_cache(engine_env):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict, run_train

    cache = ModelCache(4)
    out = run_train(EngineRequest(coin="ETH", as_of="2017-01-31", model="linear", task="train"), cache=cache)
    assert out["coin"] == "ethereum" and out["n_obs"] > 100
    pred = run_predict(
        EngineRequest(coin="ETH", as_of="2017-01-31", model="linear", horizon=2),
        cache=cache,
        url=engine_env["CRYPTO_ML_DATABASE_URL"],
    )
    assert pred["cached"]


def test_trained_version_serves_its_day_and_later_days(engine_env):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.protocol import EngineInputError
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict, run_train

    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    trained = run_train(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="linear", task="train"),
        url=url,
        cache=ModelCache(4),
    )
    assert trained["saved"] and trained["version"] == 1
    again = run_train(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="linear", task="train"),
        url=url,
        cache=ModelCache(4),
    )
    assert again["version"] == 1  # same training window: same version
    cache = ModelCache(4)
    pred = run_predict(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="linear", horizon=3), url=url, cache=cache
    )
    assert pred["version"] == 1 and not pred["cached"]
    assert run_predict(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="linear", horizon=3), url=url, cache=cache
    )["cached"]
    # A later day is served by the same version, moved to the newer closes (not refitted): for
    # the linear trend that is the same line, 31 days further on.
    later = run_predict(
        EngineRequest(coin="ETH", as_of="2017-03-31", model="linear", horizon=3), url=url, cache=cache
    )
    assert later["version"] == 1
    line = run_predict(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="linear", horizon=34), url=url, cache=cache
    )
    assert later["values"] == pytest.approx(line["values"][31:34])
    # An earlier day cannot use a model trained on later data (point in time).
    earlier = run_predict(
        EngineRequest(coin="ETH", as_of="2017-01-31", model="linear", horizon=3), url=url, cache=cache
    )
    assert earlier["version"] == 0  # fitted on the fly up to that day
    with pytest.raises(EngineInputError, match="version 1 was trained on data up to 2017-02-28, after"):
        run_predict(
            EngineRequest(coin="ETH", as_of="2017-01-31", model="linear", version=1), url=url, cache=cache
        )


def test_engine_command_line(capsys, monkeypatch, tmp_path):
    import argparse
    import json

    from crypto_ml.commands import engine

    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", "amqp://guest:secret@127.0.0.1:5672//")
    parser = argparse.ArgumentParser()
    engine.register(parser.add_subparsers())
    args = parser.parse_args(["engine", "config"])
    assert args.func(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["broker_url"] == "amqp://guest:***@127.0.0.1:5672//" and shown["cache_size"] >= 1
    with pytest.raises(SystemExit) as refused:  # argparse refuses it before anything is sent
        parser.parse_args(["engine", "predict", "bitcoin", "--horizon", "0"])
    assert refused.value.code == 2
    assert "argument --horizon: 0 is not positive" in capsys.readouterr().err
    args = parser.parse_args(["engine", "predict", "bitcoin", "--model", "prophet"])
    assert args.func(args) == 2  # the request is checked before it is sent
    assert "unknown model 'prophet'; valid models: naive" in capsys.readouterr().err


def test_run_predict_on_a_sent_price_series(engine_env):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.protocol import EngineInputError
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict

    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    closes = [1.0, 2.0, 3.0, 4.0]
    out = run_predict(
        EngineRequest(coin="my-coin", as_of="2020-01-31", model="linear", horizon=2, closes=closes),
        url=url,
        cache=ModelCache(2),
    )
    assert out["values"] == pytest.approx([5.0, 6.0]) and out["last_close"] == 4.0
    with pytest.raises(EngineInputError, match="closes must be a list of finite numbers"):
        run_predict(EngineRequest(coin="my-coin", as_of="2020-01-31", closes=[1.0, float("nan")]), url=url)
    with pytest.raises(EngineInputError, match="as_of is required when closes are sent"):
        run_predict(EngineRequest(coin="my-coin", closes=closes), url=url)


def test_the_worker_polls_the_embedded_broker_often(tmp_path, monkeypatch):
    """kombu polls its SQLAlchemy transport once a second by default: the worker then takes about
    one message a second. The worker's app sets 0.1 s (the transport options would reach
    create_engine(), so the option cannot carry it)."""
    from kombu.transport import sqlalchemy as kombu_sqla

    from crypto_ml.engine.app import make_app
    from crypto_ml.settings.engine import SQLITE_BROKER_POLL_S, EngineConfig

    make_app(EngineConfig.from_env(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    assert kombu_sqla.Transport.polling_interval == SQLITE_BROKER_POLL_S == 0.1
    app = make_app(EngineConfig.from_env(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    with app.connection_for_read() as conn:
        assert conn.transport.polling_interval == 0.1


def test_get_state_reads_the_result_backend_once_per_poll(tmp_path):
    """A wait polls ``get_state`` until the task is done: each poll is one read of the backend
    (the embedded one here, a SQLite file), whatever the state."""
    from celery import states

    from crypto_ml.engine.client import get_state, sender_app
    from crypto_ml.settings.engine import EngineConfig

    app = sender_app(EngineConfig.from_env({"CRYPTO_ML_HOME": str(tmp_path)}))
    backend = app.backend
    reads = []
    read = backend._get_task_meta_for
    backend._get_task_meta_for = lambda task_id: reads.append(task_id) or read(task_id)
    try:
        assert get_state("nobody-sent-this", app=app) == ("PENDING", None)
        backend.store_result("t-started", {"pid": 7, "hostname": "engine-1"}, states.STARTED)
        assert get_state("t-started", app=app) == ("STARTED", {"pid": 7, "hostname": "engine-1"})
        backend.store_result("t-ok", {"coin": "bitcoin", "forecast": [1.0]}, states.SUCCESS)
        assert get_state("t-ok", app=app) == ("SUCCESS", {"coin": "bitcoin", "forecast": [1.0]})
        backend.mark_as_failure("t-bad", ValueError("unknown coin 'x'"))
        assert get_state("t-bad", app=app) == ("FAILURE", "ValueError: unknown coin 'x'")
    finally:
        del backend._get_task_meta_for
    assert reads == ["nobody-sent-this", "t-started", "t-ok", "t-bad"]


def _stored(url, coin, closes, start="2020-01-01"):
    import pandas as pd

    from crypto_ml.storage import migrate, store_prices

    migrate(url)
    dates = pd.date_range(start, periods=len(closes), freq="D")
    store_prices(
        pd.DataFrame(
            {
                "coin": coin,
                "date": dates,
                "open": closes,
                "high": closes,
                "low": closes,
                "close": closes,
                "volume": 1.0,
                "market_cap": 1.0,
            }
        ),
        source="test",
        url=url,
    )


def test_run_predict_reads_the_closes_the_pipeline_stored_when_asked(engine_env):
    """history="database": the request is a claim (coin, day) and the worker reads the stored closes
    up to that day: the same forecast as sending them, no history in the message."""
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.protocol import EngineInputError
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict

    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    _stored(url, "my-coin", [1.0, 2.0, 3.0, 4.0, 5.0])
    claim = run_predict(
        EngineRequest(coin="my-coin", as_of="2020-01-04", model="linear", horizon=2, history="database"),
        url=url,
        cache=ModelCache(2),
    )
    sent = run_predict(
        EngineRequest(
            coin="my-coin", as_of="2020-01-04", model="linear", horizon=2, closes=[1.0, 2.0, 3.0, 4.0]
        ),
        url=url,
        cache=ModelCache(2),
    )
    assert claim["values"] == pytest.approx(sent["values"]) and sent["values"] == pytest.approx([5.0, 6.0])
    assert claim["last_close"] == 4.0 and claim["as_of"] == "2020-01-04"  # the row of 2020-01-05 is not seen
    with pytest.raises(
        EngineInputError,
        match=r"coin 'other': no closes on or before 2020-01-04 in the "
        r"project database sqlite:///.*CRYPTO_ML_DATABASE_URL",
    ):
        run_predict(EngineRequest(coin="other", as_of="2020-01-04", history="database"), url=url)
    _stored(url, "bad-coin", [1.0, 2.0, -3.0])
    with pytest.raises(
        EngineInputError,
        match=r"coin 'bad-coin': row 2 \(2020-01-03\) of the project "
        r"database has close -3.0; prices must be positive",
    ):
        run_predict(EngineRequest(coin="bad-coin", as_of="2020-01-04", history="database"), url=url)
    with pytest.raises(EngineInputError, match="send closes or history='database', not both"):
        run_predict(
            EngineRequest(coin="my-coin", as_of="2020-01-04", closes=[1.0, 2.0], history="database"), url=url
        )
    with pytest.raises(EngineInputError, match="history must be one of bundled, database, got 'csv'"):
        run_predict(EngineRequest(coin="my-coin", as_of="2020-01-04", history="csv"), url=url)
    with pytest.raises(EngineInputError, match="as_of is required with history='database'"):
        run_predict(EngineRequest(coin="my-coin", history="database"), url=url)

"""The one engine request: its check, its JSON form (the wire format), and how a submit builds it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crypto_ml.engine.protocol import EngineInputError
from crypto_ml.engine.request import SUBMIT_ARGUMENTS, EngineRequest


def test_a_request_is_normalised_and_its_json_is_the_tasks_keyword_arguments():
    request = EngineRequest(
        coin=" bitcoin ",
        as_of=dt.datetime(2017, 9, 1, 12),
        model="Linear",
        horizon=7,
        closes=[1, 2.5],
        params={"window": 3},
    )
    assert (request.coin, request.as_of, request.model, request.closes) == (
        "bitcoin",
        dt.date(2017, 9, 1),
        "linear",
        (1.0, 2.5),
    )
    data = request.to_json()
    assert data == {
        "coin": "bitcoin",
        "as_of": "2017-09-01",
        "model": "linear",
        "horizon": 7,
        "closes": [1.0, 2.5],
        "params": {"window": 3},
    }
    assert json.loads(json.dumps(data)) == data
    assert EngineRequest.from_json(data) == request
    assert (request.task_name, request.queue) == ("crypto_ml.predict", "predict")


def test_the_wire_format_is_the_one_workers_have_always_read():
    """Defaults are not sent: the daily claim is the six keys the coin DAG's submit always sent."""
    claim = EngineRequest.build(
        "predict",
        coin="bitcoin",
        as_of="2017-06-05",
        model="naive",
        horizon="10",
        history="database",
        run_id="manual__1",
    )
    assert claim.to_json() == {
        "coin": "bitcoin",
        "as_of": "2017-06-05",
        "model": "naive",
        "horizon": 10,
        "history": "database",
        "run_id": "manual__1",
    }
    assert EngineRequest(coin="bitcoin").to_json() == {"coin": "bitcoin", "model": "naive", "horizon": 10}
    train = EngineRequest(coin="bitcoin", as_of="2017-06-30", task="train")
    assert train.to_json() == {"coin": "bitcoin", "as_of": "2017-06-30", "model": "linear"}
    assert (train.task_name, train.queue) == ("crypto_ml.train", "train")
    assert EngineRequest.from_json(train.to_json(), task="train") == train


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"coin": ""}, "coin must be a non-empty string, got ''"),
        (
            {"coin": "bitcoin", "horizon": "ten"},
            "coin 'bitcoin': horizon must be a positive int (days), got 'ten'",
        ),
        ({"coin": "bitcoin", "version": 0}, "coin 'bitcoin': version must be a positive int or null, got 0"),
        (
            {"coin": "bitcoin", "params": ["epochs"]},
            "coin 'bitcoin': params must be an object of hyperparameters",
        ),
        ({"coin": "bitcoin", "closes": [1.0, 2.0]}, "coin 'bitcoin': as_of is required when closes are sent"),
        ({"coin": "bitcoin", "run_id": 7}, "coin 'bitcoin': run_id must be a string, got 7"),
        ({"coin": "bitcoin", "levels": [100]}, "coin 'bitcoin': interval level must be a percentage"),
        ({"coin": "bitcoin", "task": "backtest"}, "task must be one of predict, train, got 'backtest'"),
        (
            {"coin": "bitcoin", "horizon": 5, "task": "train"},
            "coin 'bitcoin': a train request takes coin, as_of, model, params; got horizon",
        ),
    ],
)
def test_a_bad_request_names_the_coin_and_the_field(fields, message):
    with pytest.raises(EngineInputError) as info:
        EngineRequest(**fields)
    assert str(info.value).startswith(message), str(info.value)


def test_unknown_fields_are_refused_naming_them_and_the_valid_ones():
    with pytest.raises(
        EngineInputError,
        match=r"coin 'bitcoin': unknown field\(s\) colour; valid fields: "
        r"coin, as_of, model, horizon, version, params, closes, history, run_id, levels$",
    ):
        EngineRequest.from_json({"coin": "bitcoin", "colour": "red"})
    with pytest.raises(
        EngineInputError, match=r"unknown field\(s\) horizon; valid fields: coin, as_of, model, params"
    ):
        EngineRequest.from_json({"coin": "bitcoin", "horizon": 3}, task="train")
    with pytest.raises(EngineInputError, match="a predict request is an object of fields, got"):
        EngineRequest.from_json(["bitcoin"])


def test_a_submit_builds_the_request_from_the_transforms_output_or_a_claim():
    assert SUBMIT_ARGUMENTS == ("coin", "as_of", "model", "horizon", "closes", "history", "model_params")
    sent = EngineRequest.build(
        "predict", model="ar", horizon=3, closes={"coin": "ark", "as_of": "2020-01-04", "closes": [1.0, 2.0]}
    )
    assert (sent.coin, sent.as_of.isoformat(), sent.closes, sent.history) == (
        "ark",
        "2020-01-04",
        (1.0, 2.0),
        "bundled",
    )
    claim = EngineRequest.build(
        "predict", model="ar", horizon=3, closes={"coin": "ark", "as_of": "2020-01-04"}
    )
    assert (claim.closes, claim.history) == (None, "database")
    day = EngineRequest.build("predict", coin="ark", as_of="", default_as_of=lambda: "2026-11-29")
    assert day.as_of == dt.date(2026, 11, 29)
    trained = EngineRequest.build(
        "train",
        coin="ark",
        as_of="2020-01-04",
        model="linear",
        horizon=10,
        model_params={"window": 5},
        run_id="r",
    )
    assert trained.to_json() == {
        "coin": "ark",
        "as_of": "2020-01-04",
        "model": "linear",
        "params": {"window": 5},
    }
    with pytest.raises(EngineInputError, match="the request needs a coin and an as_of day"):
        EngineRequest.build("predict", coin="ark")

"""What the trading operators accept as the upstream prediction."""

from __future__ import annotations

import json

import pytest

from crypto_ml.operators.trading import as_prediction

PREDICTION = {
    "coin": "bitcoin",
    "as_of": "2017-06-29",
    "model": "naive",
    "version": 0,
    "horizon": 2,
    "values": [1.0, 1.0],
    "last_close": 1.0,
    "expected_return": 0.0,
}


def test_a_dict_is_taken_as_is():
    assert as_prediction(PREDICTION) is PREDICTION


def test_the_json_text_a_trigger_ended_sensor_hands_over_is_parsed():
    # Airflow 3.3 stores a TaskSuccessEvent's XCom serialised once more: the next task pulls text.
    assert as_prediction(json.dumps(PREDICTION)) == PREDICTION


@pytest.mark.parametrize(
    "value, words",
    [
        ("not json", "text but not JSON"),
        (json.dumps([1, 2]), "got list"),
        (None, "got NoneType"),
    ],
)
def test_anything_else_is_refused_naming_the_task(value, words):
    with pytest.raises(TypeError, match=words) as info:
        as_prediction(value, "decide")
    assert str(info.value).startswith("decide: ")

"""crypto_ml.engine.prediction.PredictionRecord: validated, JSON round trip, expected return in one place."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crypto_ml.engine.prediction import PredictionRecord, expected_return

BANDS = {"80.0": {"lower": [90, 95], "upper": [110, 120]}}


def record(**kw):
    base = dict(
        coin="btc",
        as_of="2017-06-01",
        model="ar",
        version="2",
        horizon=2,
        values=[101, 110],
        last_close=100,
        intervals=BANDS,
    )
    return PredictionRecord(**{**base, **kw})


def test_types_are_normalised_and_json_round_trips():
    r = record()
    assert (r.as_of, r.version, r.values, r.interval_method) == (
        dt.date(2017, 6, 1),
        2,
        (101.0, 110.0),
        "conformal",
    )
    assert r.intervals == {"80": {"lower": [90.0, 95.0], "upper": [110.0, 120.0]}}
    assert r.bounds(80) == ([90.0, 95.0], [110.0, 120.0]) and r.bounds("95") is None
    data = json.loads(json.dumps(r.to_json()))
    assert (
        data["expected_return"] == pytest.approx(0.1) == r.expected_return == expected_return([1, 110], 100)
    )
    assert PredictionRecord.from_json({**data, "hostname": "w1", "expected_return": 9}) == r
    assert r.key == ("btc", dt.date(2017, 6, 1), "ar", 2, 2)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(values=[]), "values is empty"),
        (dict(last_close=0), "last_close must be a finite non-zero price"),
        (dict(as_of="yesterday"), "as_of 'yesterday' is not an ISO date"),
        (dict(intervals={"80": {"lower": [1.0], "upper": [2.0]}}), "interval '80' needs 2 lower and 2 upper"),
        (dict(interval_reason="too short"), "interval_reason says why there are no intervals"),
    ],
)
def test_invalid_records_are_refused_with_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        record(**change)


def test_from_json_names_missing_fields():
    with pytest.raises(ValueError, match="a prediction needs values, last_close"):
        PredictionRecord.from_json(
            {"coin": "btc", "as_of": "2017-06-01", "model": "ar", "version": 0, "horizon": 1}
        )


def test_a_record_without_intervals_carries_why_through_json():
    r = record(intervals=None, interval_reason="too few calibration residuals")
    data = json.loads(json.dumps(r.to_json()))
    assert data["interval_reason"] == "too few calibration residuals"
    assert PredictionRecord.from_json(data) == r and PredictionRecord.from_json(data).intervals is None

"""Intervals that say something: the 80 % and 95 % bands of one forecast never coincide, and a
forecast without an interval says why."""

from __future__ import annotations

import numpy as np
import pytest

from crypto_ml.forecasting.baselines import NaiveForecaster
from crypto_ml.forecasting.intervals import MIN_CALIBRATION, aci_level


def _fitted(seed: int = 3, n: int = 400) -> NaiveForecaster:
    rng = np.random.default_rng(seed)
    return NaiveForecaster().fit(100 * np.exp(np.cumsum(rng.normal(0, 0.02, n))))


def test_adaptive_levels_pushed_to_the_extremes_keep_the_bands_apart():
    """Calibration errors that grow at the end push adaptive conformal inference to ~100 % for
    both levels; read there, both bands were the sample's extremes (identical)."""
    model = _fitted()
    n = 120
    calm = [0.001 * ((-1) ** i) for i in range(n - 40)]
    wild = [0.3 * ((-1) ** i) * (1 + i / 40) for i in range(40)]
    model.interval_residuals_ = [calm + wild for _ in model.interval_residuals_]
    model._aci_cache = None
    assert (
        aci_level(model.interval_residuals_[0], 80, 0.02, 1) > 99
        and aci_level(model.interval_residuals_[0], 95, 0.02, 1) > 99
    )
    bands = model.predict_interval(10, (80, 95))
    (lo80, hi80), (lo95, hi95) = bands[80], bands[95]
    assert np.all(hi95 > hi80) and np.all(lo95 < lo80)


def test_nominal_levels_read_as_before_when_apart():
    model = _fitted().set_params(interval_aci_gamma=None)
    read = model._read_levels([80.0, 95.0], 1)
    assert read == {80.0: 80.0, 95.0: 95.0}


def test_tied_residuals_give_no_interval_and_say_why():
    model = _fitted()
    model.interval_residuals_ = [[0.01] * 60 for _ in model.interval_residuals_]
    model._aci_cache = None
    with pytest.raises(
        ValueError, match=r"the 95 % and 80 % bands coincide at step 1 \(tied calibration residuals\)"
    ):
        model.predict_interval(5, (80, 95))
    out = model.predict_with_intervals(5, (80, 95))
    assert out["intervals"] is None and "bands coincide" in out["interval_reason"]


def test_too_short_a_calibration_sample_gives_no_interval_and_says_why():
    short = NaiveForecaster().fit(np.linspace(100, 120, 30))
    out = short.predict_with_intervals(5)
    assert out["intervals"] is None and out["interval_method"] is None
    assert f"calibrating them needs at least {short.min_calibration_points()}" in out["interval_reason"]
    assert short.min_calibration_points() >= MIN_CALIBRATION
    ok = _fitted().predict_with_intervals(5)
    assert ok["interval_reason"] is None and set(ok["intervals"]) == {"80", "95"}

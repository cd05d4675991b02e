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
    model = _fitted().set_params(interval_aci_gamma=0.02)
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


SETTINGS = [
    {},
    {"interval_aci_gamma": None},
    {"interval_aci_gamma": 0.02},
    {"interval_aci_sides": True},
    {"interval_log": True},
    {"interval_log": True, "interval_aci_sides": True, "interval_aci_gamma": 0.01},
    {"interval_vol_ewm": None, "interval_aci_gamma": None, "interval_half_life": 30},
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("seed", range(6))
def test_the_95_band_strictly_contains_the_80_band_at_every_step(settings, seed):
    """Over wild and calm synthetic series (jumps, trends, a coin falling ~99 %), with every interval
    option: the 95 % band is wider than the 80 % one on both sides at every step, unless a bound
    sits on a price floor (0) or the plausibility cap, where both levels meet it."""
    from crypto_ml.forecasting import make_forecaster
    from crypto_ml.forecasting.intervals import MAX_BOUND_RATIO

    rng = np.random.default_rng(seed)
    sigma = [0.01, 0.05, 0.15][seed % 3]
    r = rng.standard_t(3, 420) * sigma + (0.01 if seed % 2 else -0.012)
    y = 100 * np.exp(np.cumsum(r))
    for name in ("naive", "drift", "ar"):
        model = make_forecaster(name, **settings).fit(y)
        if settings.get("interval_log") and np.min(model.predict(30)) <= 0:  # a drift below zero
            with pytest.raises(
                ValueError,
                match=(
                    "(calibrated on log errors and the forecast path is not "
                    "positive|log errors need positive forecasts)"
                ),
            ):
                model.predict_interval(30, (80, 95))
            continue
        cap = MAX_BOUND_RATIO * y[-1]
        raw = model._conformal_bands(30, [80.0, 95.0])
        if np.any((raw[95.0][0] == 0) & (raw[95.0][1] == cap)):  # errors far above a collapsed price
            with pytest.raises(
                ValueError, match="bands coincide at step .* clipped to the price floor 0 and"
            ):
                model.predict_interval(30, (80, 95))
            assert "clipped to the price floor" in model.predict_with_intervals(30)["interval_reason"]
            continue
        bands = model.predict_interval(30, (80, 95))
        (lo80, hi80), (lo95, hi95) = bands[80], bands[95]
        assert np.all((lo95 < lo80) | (lo80 == 0)), (name, lo95, lo80)
        assert np.all((hi95 > hi80) | (hi80 == cap)), (name, hi95, hi80)
        assert np.all(hi95 <= cap) and np.all(lo95 >= 0)


def test_bounds_from_a_few_wild_residuals_are_capped_at_the_plausibility_limit():
    """Residuals of +500 % (a young altcoin's pump) would put the upper bound at tens of times
    the close; it stops at MAX_BOUND_RATIO times the last close, at both levels, lower bounds untouched."""
    from crypto_ml.forecasting.intervals import MAX_BOUND_RATIO

    model = _fitted().set_params(interval_aci_gamma=None)
    model.interval_vol_ = None
    wild = list(np.linspace(-0.3, 0.3, 48)) + list(np.linspace(50.0, 60.0, 12))
    model.interval_residuals_ = [wild for _ in model.interval_residuals_]
    bands = model.predict_interval(5, (80, 95))
    for lo, hi in bands.values():
        assert np.all(hi == MAX_BOUND_RATIO * model.last_value_) and np.all(lo < model.last_value_)
    assert np.all(bands[95][0] < bands[80][0])


def test_log_error_intervals_stay_above_zero_and_are_further_up_than_down():
    model = NaiveForecaster(interval_log=True).fit(
        100 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.2, 400)))
    )
    assert model.interval_log_ is True
    for lo, hi in model.predict_interval(10).values():
        assert np.all(lo > 0)
        assert np.all(hi - model.last_value_ > model.last_value_ - lo)  # a log band is skewed up in price


def test_per_side_adaptive_levels_widen_only_the_side_that_misses():
    """Residuals whose recent values break out upwards only: the upper side's level rises above
    nominal, the lower side's falls below it; the one-level walk moves both sides alike."""
    from crypto_ml.forecasting.intervals import aci_side_levels

    rng = np.random.default_rng(0)
    calm = list(rng.normal(0, 0.01, 100))
    breakout = list(np.abs(rng.normal(0.05, 0.01, 60)))
    lower, upper = aci_side_levels(calm + breakout, 80, 0.02, 1)
    assert upper > 85 and lower < 70  # the lower tail, never missed, narrows
    one = aci_level(calm + breakout, 80, 0.02, 1)
    assert one > 80

"""Prediction intervals: coverage on series whose distribution is known, point in time, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from crypto_ml.forecasting import (
    DriftForecaster,
    LSTMForecaster,
    NaiveForecaster,
    aci_level,
    check_levels,
    conformal_bounds,
    load_forecaster,
    make_forecaster,
)
from crypto_ml.forecasting.base import BaseForecaster
from crypto_ml.forecasting.intervals import EWM_MIN_RETURNS, MIN_CALIBRATION

SIGMA = 0.03  # daily log-return volatility of the synthetic random walks


def random_walks(n_series: int, length: int, *, seed: int, sigma: float = SIGMA) -> np.ndarray:
    """Geometric random walks: i.i.d. N(0, sigma) daily log returns (a known distribution)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, sigma, size=(n_series, length - 1))
    return 100.0 * np.exp(np.concatenate([np.zeros((n_series, 1)), np.cumsum(r, axis=1)], axis=1))


def coverage_of(
    model: str, series: np.ndarray, horizon: int, level: float, **settings
) -> tuple[float, np.ndarray]:
    """Share of the next ``horizon`` closes inside the interval, over all series (fitted on all
    but the last ``horizon`` closes of each, with the interval ``settings``), and the mean
    relative width per step."""
    inside, widths = [], []
    for y in series:
        train, future = y[:-horizon], y[-horizon:]
        f = make_forecaster(model, **settings).fit(train)
        lo, hi = f.predict_interval(horizon, levels=[level])[level]
        inside.append((future >= lo) & (future <= hi))
        widths.append((hi - lo) / train[-1])
    return float(np.mean(inside) * 100), np.mean(widths, axis=0)


@pytest.mark.parametrize("level", [80, 95])
def test_naive_intervals_cover_a_random_walk_at_the_nominal_level(level):
    series = random_walks(300, 260, seed=level)
    coverage, width = coverage_of("naive", series, 10, level)
    assert abs(coverage - level) <= 4.0, coverage
    # Against the truth: the step-1 return is N(0, sigma), so the interval is about 2 z sigma wide
    # (the conformal bounds are quantiles of ~180 residuals, a little wider by the finite-sample
    # correction); and the width grows like sqrt(h) for a random walk.
    z = norm.ppf(0.5 + level / 200)
    assert width[0] == pytest.approx(2 * z * SIGMA, rel=0.15)
    assert width[9] / width[0] == pytest.approx(np.sqrt(10), rel=0.2)


def test_ar_and_drift_intervals_cover_a_random_walk_too():
    series = random_walks(150, 260, seed=7)
    for model in ("drift", "ar"):
        coverage, _ = coverage_of(model, series, 10, 80)
        assert abs(coverage - 80) <= 5.0, (model, coverage)


def test_a_wrongly_calibrated_interval_would_fail_the_coverage_check():
    """The check above can fail: calibrate on calm data, then forecast a regime twice as volatile."""
    calm = random_walks(200, 250, seed=3, sigma=0.01)  # (no method can know a regime it has not seen)
    wild = random_walks(200, 11, seed=4, sigma=0.04)
    series = np.concatenate([calm, calm[:, -1:] * wild[:, 1:] / 100.0], axis=1)
    coverage, _ = coverage_of("naive", series, 10, 80)
    assert coverage < 60


def test_intervals_are_point_in_time_and_follow_update():
    y = random_walks(1, 400, seed=11)[0]
    a = make_forecaster("ar").fit(y[:300])
    changed = y.copy()
    changed[300:] *= 5.0  # whatever happens after the training window
    b = make_forecaster("ar").fit(changed[:300])
    assert a.interval_residuals_ == b.interval_residuals_
    bounds = a.predict_interval(5)
    # A weekly model moved to later days keeps its calibration; the bounds move with the last close.
    a.update(y[:310])
    assert a.interval_residuals_ == b.interval_residuals_
    moved = a.predict_interval(5)
    for level in (80, 95):
        lo, hi = moved[level]
        point = a.predict(5)
        assert np.all(lo < point) and np.all(point < hi)
        assert not np.allclose(lo, bounds[level][0])


def test_conformal_bounds_finite_sample_rank():
    r = np.arange(1, 20, dtype=float)  # 19 residuals: the 95 % upper rank is ceil(20 * .975) = 20 -> max
    assert conformal_bounds(r, 95) == (1.0, 19.0)
    lo, hi = conformal_bounds(np.arange(1, 101, dtype=float), 80)
    assert (lo, hi) == (10.0, 91.0)  # floor(101 * .1) = 10th, ceil(101 * .9) = 91st


def test_short_history_has_no_interval_and_says_why():
    f = NaiveForecaster().fit([1.0, 1.1, 1.2, 1.1])
    with pytest.raises(ValueError, match="no prediction intervals"):
        f.predict_interval(3)
    out = f.predict_with_intervals(3)
    assert out["intervals"] is None and out["interval_method"] is None and len(out["values"]) == 3
    need = NaiveForecaster().min_calibration_points()
    assert need == EWM_MIN_RETURNS + 1 + MIN_CALIBRATION  # the first origin needs a volatility
    assert NaiveForecaster().fit(np.linspace(1, 2, need - 1)).interval_method() is None
    assert NaiveForecaster().fit(np.linspace(1, 2, need)).interval_method() == "conformal"


@pytest.mark.parametrize("levels", [[0], [100], [-5], ["x"], [], [float("nan")]])
def test_bad_levels_are_refused(levels):
    with pytest.raises(ValueError, match="level"):
        check_levels(levels)


def test_intervals_survive_json_and_save(tmp_path):
    y = random_walks(1, 300, seed=5)[0]
    f = DriftForecaster().fit(y)
    back = type(f).from_dict(json.loads(json.dumps(f.to_dict(), allow_nan=False)))
    assert back.predict_with_intervals(7) == f.predict_with_intervals(7)
    loaded = load_forecaster(f.save(tmp_path / "drift"))
    out = loaded.predict_with_intervals(7, levels=(50, 80, 95))
    assert set(out["intervals"]) == {"50", "80", "95"}
    lo50, hi50 = out["intervals"]["50"]["lower"], out["intervals"]["50"]["upper"]
    lo95, hi95 = out["intervals"]["95"]["lower"], out["intervals"]["95"]["upper"]
    assert all(a <= b <= c <= d for a, b, c, d in zip(lo95, lo50, hi50, hi95))
    # A model saved before intervals existed still loads and serves points, without intervals.
    data = f.to_dict()
    del data["state"]["interval_residuals_"]
    old = type(f).from_dict(data)
    assert old.predict_with_intervals(3)["intervals"] is None


def test_lstm_batched_calibration_matches_update_and_predict():
    y = random_walks(1, 120, seed=9)[0]
    params = dict(window=5, units=(3, 3), epochs=1, batch_size=16, min_train=10, seed=0)
    model = LSTMForecaster(**params)
    model._fit_point(y[:80])
    origins = np.arange(79, 90)
    batched = model._calibration_paths(y, origins, 4)
    loop = BaseForecaster._calibration_paths(model, y, origins, 4)
    np.testing.assert_allclose(batched, loop, rtol=1e-4)


def regime_shift(n_series: int, *, seed: int, calm: int = 200, wild: int = 80) -> np.ndarray:
    """Random walks whose daily log-return volatility jumps from 1 % to 4 % ``wild`` days before
    the end (known distribution on either side of the jump); the last 10 days are in the wild part."""
    rng = np.random.default_rng(seed)
    sigma = np.concatenate([np.full(calm, 0.01), np.full(wild, 0.04)])
    r = rng.normal(0.0, 1.0, size=(n_series, len(sigma))) * sigma
    return 100.0 * np.exp(np.concatenate([np.zeros((n_series, 1)), np.cumsum(r, axis=1)], axis=1))


def test_volatility_normalised_intervals_follow_a_regime_the_plain_ones_miss():
    """Volatility jumps 70 days before the forecast: the plain residuals of 180 origins are mostly
    calm ones and undercover; divided by the EWMA volatility known at their origin they are
    exchangeable again, and the bounds, scaled by today's volatility, cover at the nominal level."""
    series = regime_shift(120, seed=21)
    plain, _ = coverage_of("naive", series, 10, 80, interval_aci_gamma=None, interval_vol_ewm=None)
    normalised, width = coverage_of("naive", series, 10, 80, interval_aci_gamma=None, interval_vol_ewm=0.94)
    assert plain < 70, plain
    assert abs(normalised - 80) <= 6.0, normalised
    # about 2 z * 4 % wide at step 1 (the EWMA has not fully caught up with the jump: a bit less)
    assert width[0] == pytest.approx(2 * norm.ppf(0.9) * 0.04, rel=0.25)


def test_aci_level_rises_when_recent_errors_outgrow_old_ones_and_stays_put_otherwise():
    rng = np.random.default_rng(0)
    steady = rng.normal(size=170)
    assert abs(aci_level(steady, 80, 0.005, step=1) - 80) < 5
    growing = np.concatenate([rng.normal(size=90), 3 * rng.normal(size=80)])
    assert aci_level(growing, 80, 0.005, step=1) > 85
    # a calming market lowers it
    calming = np.concatenate([3 * rng.normal(size=90), rng.normal(size=80)])
    assert aci_level(calming, 80, 0.005, step=1) < 75


@pytest.mark.parametrize(
    "settings",
    [
        {"interval_vol_ewm": None, "interval_aci_gamma": 0.005},
        {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.02},
    ],
)
def test_adaptive_intervals_still_cover_a_stationary_random_walk(settings):
    series = random_walks(120, 260, seed=31)
    plain, _ = coverage_of("naive", series, 10, 80, interval_vol_ewm=None, interval_aci_gamma=None)
    coverage, width = coverage_of("naive", series, 10, 80, **settings)
    # 120 series of 10 correlated days: this sample sits ~4 points above 80 even for plain conformal;
    # on a stationary walk adaptation must not move coverage far from plain's
    assert abs(coverage - 80) <= 6.0, coverage
    assert abs(coverage - plain) <= 3.0, (coverage, plain)
    assert width[0] == pytest.approx(2 * norm.ppf(0.9) * SIGMA, rel=0.2)


def test_a_band_wholly_below_zero_is_clipped_to_zero_and_stays_ordered():
    """Calibration errors that all point far down (a model fitted on a steady rise, served later)
    must not give a lower bound above the upper one: both are clipped at 0, a close's floor."""
    from crypto_ml.forecasting.baselines import NaiveForecaster

    model = NaiveForecaster().fit(np.linspace(1.0, 100.0, 200))
    model.interval_residuals_ = [[-1e6 - i for i in range(60)] for _ in model.interval_residuals_]
    model._aci_cache = None
    for lower, upper in model.predict_interval(3).values():
        assert np.all(lower == 0.0) and np.all(upper == 0.0)

"""The forecaster contract, each model's numbers, degenerate input and safe serialization."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from crypto_ml.forecasting import (
    DEFAULT_MODEL,
    INTERVAL_DEFAULTS,
    MODELS,
    AutoRegressiveForecaster,
    DriftForecaster,
    LinearTrendForecaster,
    NaiveForecaster,
    load_forecaster,
    make_forecaster,
    recursive_forecast,
)

TINY_LSTM = dict(window=5, units=(3, 3), epochs=1, batch_size=16, min_train=5, seed=1)
PARAMS = {"naive": {}, "drift": {}, "linear": {}, "ar": {"lags": 3, "min_train": 5}, "lstm": TINY_LSTM}
LOG_MODELS = ["ar", "lstm"]


def random_walk(n: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.001, 0.03, n)))


@pytest.fixture(params=list(MODELS))
def name(request) -> str:
    return request.param


def make(name: str, **extra):
    return make_forecaster(name, **{**PARAMS[name], **extra})


# -- the contract ----------------------------------------------------------------------------------
def test_fit_returns_self_and_predict_gives_horizon_floats(name):
    f = make(name)
    assert f.fit(random_walk()) is f
    out = f.predict(7)
    assert out.shape == (7,) and out.dtype == np.float64 and np.all(np.isfinite(out))
    assert f.predict().shape == (10,)  # default horizon
    assert f.n_obs_ == 80 and f.last_value_ == random_walk()[-1]


def test_predict_before_fit_raises_not_fitted(name):
    with pytest.raises(NotFittedError):
        make(name).predict(3)


def test_params_clone_and_init_stores_without_validation(name):
    f = make(name)
    assert PARAMS[name].items() <= f.get_params().items()
    c = clone(f.fit(random_walk()))
    assert c.get_params() == f.get_params()
    with pytest.raises(NotFittedError):
        c.predict(2)
    if PARAMS[name]:
        key = next(iter(PARAMS[name]))
        f.set_params(**{key: -3})  # stored as given, no validation in set_params/__init__
        assert f.get_params()[key] == -3


def test_interval_settings_are_params_that_clone_and_set_params_see(name):
    f = make(name)
    assert {k: f.get_params()[k] for k in INTERVAL_DEFAULTS} == INTERVAL_DEFAULTS
    c = clone(f.set_params(calibration_steps=5, interval_aci_gamma=None))
    assert (c.calibration_steps, c.interval_aci_gamma) == (5, None)
    assert "interval_aci_gamma" not in vars(type(c))  # an instance's setting, not a class attribute
    assert make(name).interval_aci_gamma == INTERVAL_DEFAULTS["interval_aci_gamma"]


def test_interval_settings_change_the_intervals():
    y = random_walk(300, seed=4)
    default = NaiveForecaster().fit(y)
    assert len(default.interval_residuals_) == INTERVAL_DEFAULTS["calibration_steps"]
    assert len(NaiveForecaster(calibration_steps=7).fit(y).interval_residuals_) == 7
    plain = NaiveForecaster(interval_vol_ewm=None, interval_aci_gamma=None).fit(y)
    assert plain.interval_vol_ is None and default.interval_vol_ > 0
    assert not np.allclose(plain.predict_interval(5)[80][1], default.predict_interval(5)[80][1])


def test_accepts_series_and_get_df_frame(name):
    y = random_walk()
    ref = make(name).fit(y).predict(4)
    frame = pd.DataFrame({"Date": pd.date_range("2017-01-01", periods=len(y)), "Close": y})
    np.testing.assert_allclose(make(name).fit(pd.Series(y)).predict(4), ref, rtol=1e-6)
    np.testing.assert_allclose(make(name).fit(frame).predict(4), ref, rtol=1e-6)


@pytest.mark.parametrize("horizon", [0, -2, 2.5, "3", True, None])
def test_bad_horizon_is_a_clear_value_error(horizon):
    f = NaiveForecaster().fit([1.0, 2.0])
    with pytest.raises(ValueError, match="horizon must be a positive int"):
        f.predict(horizon)


def test_numpy_int_horizon_is_accepted():
    assert NaiveForecaster().fit([1.0, 2.0]).predict(np.int64(3)).tolist() == [2.0, 2.0, 2.0]


# -- degenerate input ------------------------------------------------------------------------------
def test_too_few_points_says_how_many_needed_and_given(name):
    f = make(name)
    need = f.min_points()
    with pytest.raises(ValueError, match=rf"at least {need} closes .* got {need - 1}"):
        f.fit(random_walk(need - 1) if need > 1 else [])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected(name, bad):
    y = random_walk()
    y[40] = bad
    with pytest.raises(ValueError, match="NaN/inf value.*position 40"):
        make(name).fit(y)


@pytest.mark.parametrize("name", LOG_MODELS)
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_log_models_reject_non_positive_prices(name, bad):
    y = random_walk()
    y[50] = bad
    with pytest.raises(ValueError, match="positive prices.*position 50"):
        make(name).fit(y)


@pytest.mark.parametrize("name", ["naive", "drift", "linear"])
def test_level_models_forecast_a_constant_series_as_constant(name):
    np.testing.assert_allclose(make(name).fit(np.full(30, 5.0)).predict(4), 5.0)


@pytest.mark.parametrize("name", LOG_MODELS)
def test_log_return_models_reject_a_constant_series(name):
    with pytest.raises(ValueError, match="constant series"):
        make(name).fit(np.full(80, 5.0))


def test_two_dimensional_and_non_numeric_history_rejected():
    with pytest.raises(ValueError, match="1-D"):
        NaiveForecaster().fit(np.ones((3, 4)))
    with pytest.raises(ValueError, match="numeric"):
        NaiveForecaster().fit(["a", "b"])
    with pytest.raises(ValueError, match="'Close' column"):
        NaiveForecaster().fit(pd.DataFrame({"Open": [1.0, 2.0]}))


def test_ar_rejects_zero_lags():
    with pytest.raises(ValueError, match="lags must be >= 1"):
        AutoRegressiveForecaster(lags=0).fit(random_walk())


# -- the numbers -----------------------------------------------------------------------------------
def test_naive_and_drift_and_linear_on_a_straight_line():
    y = 10.0 + 2.0 * np.arange(20)
    expected = 10.0 + 2.0 * np.arange(20, 25)
    np.testing.assert_allclose(NaiveForecaster().fit(y).predict(5), y[-1])
    np.testing.assert_allclose(DriftForecaster().fit(y).predict(5), expected)
    np.testing.assert_allclose(LinearTrendForecaster().fit(y).predict(5), expected)


def test_linear_window_uses_only_the_trailing_days():
    y = np.r_[np.full(50, 100.0), 1.0 + np.arange(10.0)]  # flat, then a new trend
    full = LinearTrendForecaster().fit(y).predict(2)
    recent = LinearTrendForecaster(window=10).fit(y).predict(2)
    np.testing.assert_allclose(recent, [11.0, 12.0])
    assert not np.allclose(full, recent)
    assert DriftForecaster(window=10).fit(y).predict(1)[0] == pytest.approx(11.0)
    # a window of one day still gives a finite slope (from the last two closes)
    assert DriftForecaster(window=1).fit(y).predict(1)[0] == pytest.approx(11.0)
    assert LinearTrendForecaster(window=1).fit(y).predict(1)[0] == pytest.approx(11.0)


def test_ar_extends_constant_growth_and_recovers_ar1():
    y = 3.0 * np.exp(0.01 * np.arange(60))
    np.testing.assert_allclose(
        AutoRegressiveForecaster(lags=2).fit(y).predict(3), 3.0 * np.exp(0.01 * np.arange(60, 63))
    )
    rng = np.random.default_rng(3)
    r = np.zeros(3000)
    for t in range(1, len(r)):
        r[t] = 0.5 * r[t - 1] + rng.normal(0, 0.01)
    f = AutoRegressiveForecaster(lags=1).fit(np.exp(np.cumsum(r)))
    assert f.coef_[0] == pytest.approx(0.5, abs=0.05)
    # recursive multi-step: predicted returns decay geometrically by the AR coefficient
    path = np.log(np.r_[f.last_value_, f.predict(3)])
    steps = np.diff(path) - f.intercept_ * np.array([1, 1 + f.coef_[0], 1 + f.coef_[0] + f.coef_[0] ** 2])
    assert steps[1] == pytest.approx(steps[0] * f.coef_[0], rel=1e-6, abs=1e-12)


def test_recursive_forecast_advances_the_window():
    seen = []

    def step(window):
        seen.append(window.copy())
        return window[-1] + window[-2]  # Fibonacci: wrong if the window does not advance

    out = recursive_forecast(step, np.array([0.0, 1.0, 1.0]), 5)
    assert out.tolist() == [2.0, 3.0, 5.0, 8.0, 13.0]
    for k in range(1, 5):
        assert seen[k][-1] == out[k - 1] and len(seen[k]) == 3


# -- registry and serialization ---------------------------------------------------------------------
def test_registry_names_and_error_lists_valid_models():
    assert set(MODELS) == {"naive", "drift", "linear", "ar", "lstm"}
    assert DEFAULT_MODEL in MODELS
    assert isinstance(make_forecaster("LINEAR", window=5), LinearTrendForecaster)
    with pytest.raises(ValueError, match="valid models: naive, drift, linear, ar, lstm"):
        make_forecaster("prophet")


@pytest.mark.parametrize("name", ["naive", "drift", "linear", "ar"])
def test_json_round_trip_gives_identical_forecasts(name, tmp_path):
    f = make(name).fit(random_walk())
    data = json.loads(json.dumps(f.to_dict()))
    assert np.array_equal(type(f).from_dict(data).predict(10), f.predict(10))
    f.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecaster.json"]
    g = load_forecaster(tmp_path)
    assert type(g) is type(f) and g.get_params() == f.get_params()
    assert np.array_equal(g.predict(10), f.predict(10))


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved forecaster"):
        load_forecaster(tmp_path)
    (tmp_path / "forecaster.json").write_text(json.dumps({"model": "nope"}))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        load_forecaster(tmp_path)
    with pytest.raises(ValueError, match="got a 'drift' model"):
        NaiveForecaster.from_dict(DriftForecaster().fit([1.0, 2.0]).to_dict())

"""Persistence: models saved by earlier code still load and forecast the same; the interval
settings are saved with the params."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.forecasting import INTERVAL_DEFAULTS, MODELS, NaiveForecaster, load_forecaster, make_forecaster
from crypto_ml.forecasting.persistence import SAVED_BEFORE_SETTINGS

#: Saved by commit 34ce9d1 (interval settings were class attributes then, not in the params), with
#: ``make_fixture.py``: every model fitted on ethereum's last 100 closes but 30, and what it
#: forecast after ``update`` to all 100.
SAVED = Path(__file__).parent / "data" / "saved_34ce9d1"


def _expected() -> dict:
    return json.loads((SAVED / "expected.json").read_text())


def _ethereum() -> np.ndarray:
    closes, _ = CryptoLoader().get_prices("ethereum")
    return np.asarray(closes, dtype="float64")[-100:]


@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_saved_before_the_interval_settings_were_params_loads_and_forecasts_the_same(name):
    saved = json.loads((SAVED / name / "forecaster.json").read_text())
    assert not set(INTERVAL_DEFAULTS) & set(saved["params"])  # the old format indeed
    model = load_forecaster(SAVED / name)
    # calibrated as then (SAVED_BEFORE_SETTINGS), not with today's defaults
    assert {k: model.get_params()[k] for k in INTERVAL_DEFAULTS} == SAVED_BEFORE_SETTINGS
    assert model.interval_aci_gamma != INTERVAL_DEFAULTS["interval_aci_gamma"]
    out = model.update(_ethereum()).predict_with_intervals(12)
    want = _expected()[name]["after_update"]
    assert out["interval_method"] == want["interval_method"] == "conformal"
    np.testing.assert_allclose(out["values"], want["values"], rtol=1e-6)
    for level, bounds in want["intervals"].items():
        np.testing.assert_allclose(out["intervals"][level]["lower"], bounds["lower"], rtol=1e-6)
        np.testing.assert_allclose(out["intervals"][level]["upper"], bounds["upper"], rtol=1e-6)


def test_a_model_saved_now_keeps_its_interval_settings(tmp_path):
    y = _ethereum()
    settings = {
        "calibration_steps": 12,
        "interval_vol_ewm": None,
        "interval_aci_gamma": None,
        "interval_half_life": 30.0,
    }
    model = NaiveForecaster(**settings).fit(y)
    saved = json.loads((model.save(tmp_path / "naive") / "forecaster.json").read_text())
    assert {k: saved["params"][k] for k in settings} == settings
    back = load_forecaster(tmp_path / "naive")
    assert back.get_params() == model.get_params()
    assert back.predict_with_intervals(15) == model.predict_with_intervals(15)
    assert len(back.interval_residuals_) == 12


def test_the_fixture_models_are_the_registry_models():
    assert set(_expected()) == set(MODELS)
    for name, entry in _expected().items():
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["params"].items()}
        want = make_forecaster(name, **{**SAVED_BEFORE_SETTINGS, **params}).get_params()
        assert load_forecaster(SAVED / name).get_params() == want

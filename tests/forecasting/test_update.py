"""``update``: a fitted model moves to newer data without refitting."""

from __future__ import annotations

import numpy as np
import pytest

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.forecasting.registry import make_forecaster


@pytest.fixture(scope="module")
def closes():
    return CryptoLoader().get_prices("litecoin")[0]


@pytest.mark.parametrize("name", ["naive", "drift", "linear", "ar"])
def test_update_keeps_parameters_and_moves_the_start(name, closes):
    old, new = closes[:-30], closes
    fitted = make_forecaster(name).fit(old)
    params = {
        k: v for k, v in fitted.to_dict()["state"].items() if k.endswith(("coef_", "slope_", "intercept_"))
    }
    updated = make_forecaster(name).fit(old).update(new)
    assert {k: v for k, v in updated.to_dict()["state"].items() if k in params} == params  # not refitted
    assert updated.last_value_ == new[-1] and updated.n_obs_ == len(new)
    refit = make_forecaster(name).fit(new)
    if name == "naive":
        np.testing.assert_array_equal(updated.predict(5), refit.predict(5))
    # the forecast starts from the new last close, not the old one
    assert not np.array_equal(updated.predict(5), fitted.predict(5))


def test_linear_update_extrapolates_the_same_line_further(closes):
    model = make_forecaster("linear").fit(closes[:100])
    line = model.predict(40)
    np.testing.assert_allclose(model.update(closes[:130]).predict(10), line[30:40])


def test_ar_update_uses_the_latest_lags(closes):
    model = make_forecaster("ar", lags=3).fit(closes[:-10])
    model.update(closes)
    np.testing.assert_allclose(model.last_returns_, np.diff(np.log(closes))[-3:])


def test_update_rejects_bad_input(closes):
    with pytest.raises(ValueError, match="fitted on"):
        make_forecaster("linear").fit(closes[:100]).update(closes[:50])
    with pytest.raises(ValueError, match="at least 6 closes"):
        make_forecaster("ar", lags=5).fit(closes[:100]).update(closes[:3])
    bad = closes.copy()
    bad[-1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make_forecaster("naive").fit(closes).update(bad)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_forecaster("naive").update(closes)


def test_lstm_update_moves_the_window(closes):
    model = make_forecaster("lstm", window=10, units=(4, 4), epochs=1, batch_size=16, min_train=5, seed=1)
    model.fit(closes[:200])
    before = model.predict(3)
    model.update(closes[:260])
    r = np.diff(np.log(closes[:260]))[-10:]
    np.testing.assert_allclose(model.last_z_, (r - model.mean_) / model.scale_)
    assert model.last_value_ == closes[259]
    assert not np.allclose(model.predict(3), before)

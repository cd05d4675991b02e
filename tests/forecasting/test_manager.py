"""CryptoManager on the real dataset: predict, predict_all with a too-short coin, stored models."""

from __future__ import annotations

import io

import numpy as np
import pytest

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.forecasting import LinearTrendForecaster
from crypto_ml.forecasting.manager import CryptoManager
from crypto_ml.storage.model_store import ModelStore


@pytest.fixture(scope="module")
def loader() -> CryptoLoader:
    return CryptoLoader()


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    return ModelStore(url=f"sqlite:///{tmp_path / 'm.db'}")


def test_predict_all_three_coins_including_a_too_short_one(loader, store):
    manager = CryptoManager(loader=loader, model="ar", horizon=5, store=store)
    out = manager.predict_all(["bitcoin", "ETH", "neblio"])
    assert list(out) == ["bitcoin", "ethereum"]
    for values in out.values():
        assert values.shape == (5,) and np.all(np.isfinite(values)) and np.all(values > 0)
    assert manager.skipped == {"neblio": "neblio has 11 closes; the ar model needs at least 26"}
    # the forecast is the AR model fitted on all of bitcoin's closes
    closes, _ = loader.get_prices("bitcoin")
    from crypto_ml.forecasting import AutoRegressiveForecaster

    np.testing.assert_allclose(out["bitcoin"], AutoRegressiveForecaster().fit(closes).predict(5))
    assert manager.models_used["bitcoin"] == {"version": 1, "reused": False}
    # before neblio's first day it has no closes at all: still a reason, not a crash
    early = CryptoManager(loader=loader, model="naive", store=False, as_of="2017-01-01")
    assert list(early.predict_all(["bitcoin", "neblio"])) == ["bitcoin"]
    assert early.skipped == {"neblio": "neblio has 0 closes; the naive model needs at least 1"}


def test_a_stored_model_is_reused_only_for_the_same_data(loader, store):
    first = CryptoManager(loader=loader, model="linear", store=store, as_of="2017-06-30")
    a = first.predict("bitcoin")
    assert first.models_used["bitcoin"] == {"version": 1, "reused": False}
    again = CryptoManager(loader=loader, model="linear", store=store, as_of="2017-06-30")
    np.testing.assert_array_equal(again.predict("bitcoin"), a)
    assert again.models_used["bitcoin"] == {"version": 1, "reused": True}
    later = CryptoManager(loader=loader, model="linear", store=store, as_of="2017-07-31")
    later.predict("bitcoin")
    assert later.models_used["bitcoin"] == {"version": 2, "reused": False}
    other_params = CryptoManager(
        loader=loader, model="linear", store=store, as_of="2017-07-31", params={"window": 30}
    )
    b = other_params.predict("bitcoin")
    assert other_params.models_used["bitcoin"]["reused"] is False
    closes, _ = loader.get_prices("bitcoin", as_of="2017-07-31")
    np.testing.assert_allclose(b, LinearTrendForecaster(window=30).fit(closes).predict(10))
    assert store.load("bitcoin", "linear", as_of="2017-06-30").n_obs_ == len(
        loader.get_prices("bitcoin", as_of="2017-06-30")[0]
    )


def test_print_predictions_is_talk_style(loader):
    manager = CryptoManager(loader=loader, model="naive", horizon=3, store=False)
    buf = io.StringIO()
    manager.print_predictions(["bitcoin", "neblio", "nocoin"], file=buf)
    lines = buf.getvalue().splitlines()
    last = loader.get_prices("bitcoin")[0][-1]
    assert lines[0] == f"bitcoin [[{last:.2f} {last:.2f} {last:.2f}]]"
    assert lines[1] == "neblio [[{0:.2f} {0:.2f} {0:.2f}]]".format(loader.get_prices("neblio")[0][-1])
    assert lines[2].startswith("nocoin skipped: unknown coin 'nocoin'")


def test_unknown_model_is_a_clear_error(loader):
    with pytest.raises(ValueError, match="valid models: naive, drift, linear, ar, lstm"):
        CryptoManager(loader=loader, model="prophet", store=False).predict("bitcoin")

"""Champion / challenger: the point-in-time evaluation of a version, the promotion rule and its
settings, and the evaluation recorded at training (the engine's run_train)."""

from __future__ import annotations

import json

import pytest

from crypto_ml.evaluation.promotion import (
    PromotionSettings,
    evaluate_version,
    promotion_required,
    trade_refusal,
    verdict,
)


@pytest.fixture(scope="module")
def series():
    from crypto_ml.data.loader import CryptoLoader

    loader = CryptoLoader()
    out = {}
    for coin in ("bitcoin", "ethereum"):
        closes, dates = loader.get_prices(coin)
        out[coin] = ([float(c) for c in closes], [str(d)[:10] for d in dates])
    return out


@pytest.mark.parametrize("coin", ["bitcoin", "ethereum"])
def test_evaluation_is_json_and_point_in_time(series, coin):
    closes, dates = series[coin]
    as_of = dates[-200]
    ev = evaluate_version(coin, "drift", as_of, closes, dates, days=60)
    assert json.loads(json.dumps(ev)) == ev  # JSON in, JSON out: an engine worker can run it
    assert ev["as_of"] == as_of and ev["window_start"] == dates[-200 - 59]
    assert ev["train_end"] == ev["window_start"]  # fitted once, on the closes up to the window's first day
    assert ev["n_scored"] == 60 - 10  # forecasts whose 10-day target is on or before as_of
    assert ev["mase_vs_naive"] == pytest.approx(ev["mae"] / ev["naive_mae"])
    assert set(ev["intervals"]) <= {"80", "95"} and set(ev["strategy"]) >= {
        "total_return",
        "max_drawdown",
        "hit_rate",
        "trades",
        "fees",
    }
    # Nothing after as_of is read: the same evaluation from the closes cut at as_of.
    cut = dates.index(as_of) + 1
    assert evaluate_version(coin, "drift", as_of, closes[:cut], dates[:cut], days=60) == ev


def test_naive_is_never_promoted_and_never_trades(series):
    closes, dates = series["bitcoin"]
    ev = evaluate_version("bitcoin", "naive", dates[-100], closes, dates, days=60)
    assert ev["mase_vs_naive"] == pytest.approx(1.0)
    assert ev["strategy"]["trades"] == 0 and ev["strategy"]["total_return"] == pytest.approx(0.0)
    out = verdict(ev)
    assert out["status"] == "rejected"
    assert out["reason"].startswith("not promoted: MASE 1.00× naive (needs <= 0.98×)")


def test_too_short_a_history_is_rejected_with_the_reason(series):
    closes, dates = series["ethereum"]
    ev = evaluate_version("ethereum", "drift", dates[50], closes, dates, days=60)
    assert "error" in ev and "fewer than the 60 days" in ev["error"]
    assert verdict(ev)["reason"].startswith("not promoted: no evaluation (51 closes up to")


def _evaluation(mase=0.9, ret=0.05, dd=0.1, coverage=80.0, model="linear"):
    return {
        "model": model,
        "mase_vs_naive": mase,
        "strategy": {"total_return": ret, "max_drawdown": dd},
        "intervals": {"80": {"coverage": coverage}},
    }


def test_verdict_margins():
    s = PromotionSettings(mase_margin=0.02, return_margin=0.01, max_drawdown=0.2, coverage_tolerance=10)
    assert verdict(_evaluation(), s) == {
        "status": "promoted",
        "reason": "promoted over naive / no-trade: MASE 0.90× naive, return +5.0%",
    }
    assert verdict(_evaluation(mase=1.03), s)["reason"] == "not promoted: MASE 1.03× naive (needs <= 0.98×)"
    assert verdict(_evaluation(mase=0.99), s)["status"] == "rejected"  # better, but not by the margin
    assert verdict(_evaluation(ret=0.005), s)["reason"] == (
        "not promoted: return +0.5% vs no-trade 0.0% (needs >= +1.0%)"
    )
    assert verdict(_evaluation(dd=0.3), s)["reason"] == "not promoted: drawdown 30.0% (at most 20%)"
    assert verdict(_evaluation(coverage=65), s)["reason"] == "not promoted: 80% coverage 65% (needs >= 70%)"
    assert verdict(_evaluation(coverage=99), s)["status"] == "promoted"  # too wide: recorded, not refused
    both = verdict(_evaluation(mase=1.1, ret=-0.2), s)["reason"]
    assert both == (
        "not promoted: MASE 1.10× naive (needs <= 0.98×); return -20.0% vs no-trade 0.0% (needs >= +1.0%)"
    )


def test_verdict_against_a_champion_of_another_model():
    s = PromotionSettings(mase_margin=0.02, return_margin=0.01)
    champ = _evaluation(mase=0.85, ret=0.04, model="ar")
    out = verdict(_evaluation(mase=0.9, ret=0.06), s, champion=champ)
    assert out == {"status": "rejected", "reason": "not promoted: MASE 0.90× naive vs champion ar 0.85×"}
    assert verdict(_evaluation(mase=0.8, ret=0.06), s, champion=champ)["reason"] == (
        "promoted over champion ar: MASE 0.80× naive, return +6.0%"
    )


def test_settings_from_env():
    assert PromotionSettings.from_env({}) == PromotionSettings()
    s = PromotionSettings.from_env(
        {"CRYPTO_ML_PROMOTION_DAYS": "30", "CRYPTO_ML_PROMOTION_MASE_MARGIN": "0.1"}
    )
    assert (s.days, s.mase_margin) == (30, 0.1)
    with pytest.raises(ValueError, match="CRYPTO_ML_PROMOTION_RETURN_MARGIN must be a number >= 0"):
        PromotionSettings.from_env({"CRYPTO_ML_PROMOTION_RETURN_MARGIN": "lots"})
    assert promotion_required({}) and not promotion_required({"CRYPTO_ML_PROMOTION_REQUIRED": "off"})


def test_trade_refusal_reasons():
    assert trade_refusal(None, "linear", 0).startswith("not promoted: linear was fitted on the fly")
    assert trade_refusal(None, "linear", 4) == "not promoted: linear v4 is not in the model store"
    assert trade_refusal({"promotion": None}, "linear", 4) == "not promoted: linear v4 has no evaluation"
    assert (
        trade_refusal(
            {"promotion": "rejected", "promotion_reason": "not promoted: MASE 1.03× naive"}, "linear", 4
        )
        == "not promoted: MASE 1.03× naive"
    )
    assert trade_refusal({"promotion": "demoted", "promotion_reason": "replaced by ar v2"}, "linear", 4) == (
        "not promoted: demoted (replaced by ar v2)"
    )
    assert trade_refusal({"promotion": "promoted"}, "linear", 4) is None


def test_run_train_records_the_evaluation_with_the_version(db_url, tmp_path, monkeypatch):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_train
    from crypto_ml.storage.model_store import ModelStore

    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path))  # the model files: file://$CRYPTO_ML_HOME/models
    monkeypatch.setenv("CRYPTO_ML_PROMOTION_DAYS", "45")
    url = db_url
    out = run_train(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="drift", task="train"),
        url=url,
        cache=ModelCache(2),
    )
    assert out["promotion"]["status"] in ("promoted", "rejected") and out["promotion"]["reason"]
    row = ModelStore(url=url).info_version("ethereum", "drift", out["version"])
    ev = row["evaluation"]
    assert (ev["as_of"], ev["days"], ev["settings"]["days"]) == ("2017-02-28", 45, 45)
    assert (row["promotion"], row["promotion_reason"]) == (
        out["promotion"]["status"],
        out["promotion"]["reason"],
    )
    again = run_train(
        EngineRequest(coin="ETH", as_of="2017-02-28", model="drift", task="train"),
        url=url,
        cache=ModelCache(2),
    )
    assert again["version"] == out["version"] and again["promotion"] == out["promotion"]
    history = ModelStore(url=url).promotion_history("ethereum")
    assert [(h["version"], h["after"], h["actor"], h["manual"]) for h in history] == [
        (out["version"], out["promotion"]["status"], "crypto_ml_train", False)
    ]


def test_a_challenger_of_another_model_is_judged_against_the_champion(sqlite_url, tmp_path, monkeypatch):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_train
    from crypto_ml.storage.model_store import ModelStore

    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path))
    monkeypatch.setenv("CRYPTO_ML_PROMOTION_DAYS", "60")
    store = ModelStore(url=sqlite_url)
    ar = run_train(
        EngineRequest(coin="bitcoin", as_of="2017-03-31", model="ar", task="train"),
        url=sqlite_url,
        cache=ModelCache(2),
    )
    store.set_promotion("bitcoin", "ar", ar["version"], "promoted", reason="champion for the test", actor="t")
    drift = run_train(
        EngineRequest(coin="bitcoin", as_of="2017-03-31", model="drift", task="train"),
        url=sqlite_url,
        cache=ModelCache(2),
    )
    ev = store.info_version("bitcoin", "drift", drift["version"])["evaluation"]
    # the champion (ar, with its stored params) evaluated on the challenger's window
    ar_alone = evaluate_version("bitcoin", "ar", "2017-03-31", *_bitcoin_to("2017-03-31"), days=60)
    assert ev["champion"]["model"] == "ar" and ev["champion"]["version"] == ar["version"]
    assert ev["champion"]["mase_vs_naive"] == pytest.approx(ar_alone["mase_vs_naive"])
    if drift["promotion"]["status"] == "promoted":
        assert drift["promotion"]["reason"].startswith("promoted over champion ar")
        assert store.champion("bitcoin")["model"] == "drift"
    else:
        assert store.champion("bitcoin")["model"] == "ar"


def _bitcoin_to(day):
    from crypto_ml.data.loader import CryptoLoader

    closes, dates = CryptoLoader().get_prices("bitcoin", as_of=day)
    return [float(c) for c in closes], [str(d)[:10] for d in dates]


def test_an_evaluation_the_data_does_not_allow_is_recorded_as_rejected(sqlite_url):
    from crypto_ml.evaluation.promotion import evaluate_and_record
    from crypto_ml.storage.model_store import ModelStore
    from crypto_ml.storage.model_versions import record_model_version

    store = ModelStore(url=sqlite_url)
    store._db()  # migrated
    v = record_model_version(
        coin="flat",
        model="drift",
        train_start="2017-01-01",
        train_end="2017-06-30",
        n_obs=181,
        params={},
        metrics={},
        artifact_path=None,
        fingerprint="fp",
        url=sqlite_url,
    )
    dates = [f"2017-{m:02d}-{d:02d}" for m in range(1, 7) for d in range(1, 29)]
    closes = [100.0] * (len(dates) - 1) + [-1.0]  # a close that is not a price
    row = evaluate_and_record(
        store, "flat", "drift", v, dates[-1], closes, dates, settings=PromotionSettings(days=30)
    )
    assert row["promotion"] == "rejected" and "not a finite price" in row["evaluation"]["error"]
    assert row["promotion_reason"].startswith("not promoted: no evaluation (coin 'flat': row 167")

"""The coin pipeline's decision trades only with a promoted model version, on real SQLite and
PostgreSQL: any other prediction is stored, with the reason recorded on it."""

from __future__ import annotations

import pytest

from crypto_ml.storage import count_rows, get_predictions, migrate
from crypto_ml.storage.model_store import ModelStore
from crypto_ml.storage.model_versions import record_model_version
from crypto_ml.trading import PaperBroker, handle_prediction, record_decision


def prediction(version, er=0.05, as_of="2024-03-01"):
    values = [100 * (1 + er / 2), 100 * (1 + er)]
    return {
        "coin": "btc",
        "as_of": as_of,
        "model": "linear",
        "version": version,
        "horizon": 2,
        "values": values,
        "last_close": 100.0,
        "expected_return": values[-1] / 100 - 1,
    }


@pytest.fixture
def db(db_url, monkeypatch):
    monkeypatch.delenv("CRYPTO_ML_PROMOTION_REQUIRED", raising=False)  # the default: required
    migrate(db_url)
    return db_url


def _version(db, status=None, reason=None):
    v = record_model_version(
        coin="btc",
        model="linear",
        train_start="2023-01-01",
        train_end="2024-02-01",
        n_obs=400,
        params={},
        metrics={},
        artifact_path=None,
        fingerprint="fp",
        url=db,
    )
    if status is not None:
        ModelStore(url=db).record_evaluation(
            "btc",
            "linear",
            v,
            evaluation={"mase_vs_naive": 1.03},
            status=status,
            reason=reason,
            actor="crypto_ml_train",
        )
    return v


def _recorded(db):
    return get_predictions(coin="btc", url=db)[-1]


def test_an_unpromoted_version_is_stored_with_the_reason(db):
    v = _version(db, "rejected", "not promoted: MASE 1.03× naive (needs <= 0.98×)")
    out = handle_prediction(prediction(v), kill_switch=False, broker=PaperBroker(db), url=db)
    assert (out["decision"], out["status"], out["reason"]) == (
        "store",
        "stored",
        (
            "not promoted: MASE 1.03× naive (needs <= 0.98×); "
            "the rule would buy: expected return +5.0% above +2.0% threshold"
        ),
    )
    row = _recorded(db)
    assert (row["decision"], row["decision_reason"]) == ("store", out["reason"])
    assert count_rows("trade_requests", db) == 0 and count_rows("paper_orders", db) == 0


@pytest.mark.parametrize(
    "version, reason",
    [
        (0, "not promoted: linear was fitted on the fly (version 0), not trained and evaluated"),
        (7, "not promoted: linear v7 is not in the model store"),
    ],
)
def test_a_version_without_evaluation_never_trades(db, version, reason):
    out = record_decision(prediction(version), kill_switch=False, broker=PaperBroker(db), url=db)
    assert (out["decision"], out["reason"]) == (
        "store",
        reason + "; the rule would buy: expected return +5.0% above +2.0% threshold",
    )


def test_an_unevaluated_stored_version_never_trades(db):
    v = _version(db)
    out = record_decision(prediction(v), kill_switch=False, broker=PaperBroker(db), url=db)
    assert out["decision"] == "store"
    assert out["reason"].startswith(f"not promoted: linear v{v} has no evaluation; the rule would buy")


def test_a_promoted_version_trades_and_a_demoted_one_stops(db):
    v = _version(db, "promoted", "promoted over naive / no-trade: MASE 0.90× naive")
    out = handle_prediction(prediction(v), kill_switch=False, broker=PaperBroker(db), url=db)
    assert (out["decision"], out["status"]) == ("trade", "filled")
    ModelStore(url=db).set_promotion("btc", "linear", v, "demoted", reason="drawdown too deep", actor="alice")
    later = handle_prediction(
        prediction(v, as_of="2024-03-02"), kill_switch=False, broker=PaperBroker(db), url=db
    )
    assert later["decision"] == "store"
    assert later["reason"].startswith("not promoted: demoted (drawdown too deep); the rule would buy")
    assert count_rows("paper_orders", db) == 1


def test_what_the_rule_would_store_keeps_the_rule_s_reason(db):
    v = _version(db, "rejected", "not promoted: MASE 1.03× naive")
    out = record_decision(prediction(v, er=0.01), kill_switch=False, broker=PaperBroker(db), url=db)
    assert (out["decision"], out["reason"]) == ("store", "expected return +1.0% within ±2.0% threshold")


def test_an_unpromoted_version_still_trims_back_within_the_caps():
    from crypto_ml.trading import TradingRules, decide
    from crypto_ml.trading.risk import Account

    # 60 coins at 100 = 6,000 USD of one coin, above the 5,000 per-coin cap: the trim still sells
    account = Account(capital=20000.0, cash=14000.0, positions={"btc": 60.0}, marks={"btc": 100.0})
    d = decide(
        prediction=prediction(3),
        account=account,
        kill_switch=False,
        rules=TradingRules(),
        refusal="not promoted: MASE 1.03× naive",
    )
    assert (d.action, d.side) == ("trade", "sell") and d.quantity == pytest.approx(10.0)
    assert d.reason.endswith("(risk trim only; not promoted: MASE 1.03× naive)")


def test_the_kill_switch_comes_first_and_the_gate_can_be_turned_off(db, monkeypatch):
    v = _version(db, "rejected", "not promoted: MASE 1.03× naive")
    assert record_decision(prediction(v), kill_switch=True, url=db)["reason"] == "kill switch on"
    monkeypatch.setenv("CRYPTO_ML_PROMOTION_REQUIRED", "false")
    out = record_decision(
        prediction(v, as_of="2024-03-02"), kill_switch=False, broker=PaperBroker(db), url=db
    )
    assert out["decision"] == "trade"

"""Promotion status and its audit trail in the model store, on real SQLite and PostgreSQL; the
``crypto-ml models`` command over them."""

from __future__ import annotations

import json

import pytest

from crypto_ml.storage import count_rows, migrate
from crypto_ml.storage.model_store import ModelStore
from crypto_ml.storage.model_versions import record_model_version


def _version(url, coin="bitcoin", model="linear", train_end="2017-01-01"):
    return record_model_version(
        coin=coin,
        model=model,
        train_start="2013-04-28",
        train_end=train_end,
        n_obs=100,
        params={},
        metrics={},
        artifact_path=None,
        fingerprint=f"fp-{model}-{train_end}",
        url=url,
    )


@pytest.fixture
def store(db_url):
    migrate(db_url)
    return ModelStore(url=db_url)


EVAL = {"mase_vs_naive": 0.9, "strategy": {"total_return": 0.04}}


def test_evaluation_is_recorded_once_with_its_audit_row(store, db_url):
    v = _version(db_url)
    row = store.record_evaluation(
        "bitcoin",
        "linear",
        v,
        evaluation=EVAL,
        status="promoted",
        reason="promoted over naive / no-trade",
        actor="crypto_ml_train",
    )
    assert (row["promotion"], row["evaluation"]) == ("promoted", EVAL) and row["promotion_changed_at"]
    # a retried training records nothing new, even with another verdict
    again = store.record_evaluation(
        "bitcoin",
        "linear",
        v,
        evaluation={"other": 1},
        status="rejected",
        reason="x",
        actor="crypto_ml_train",
    )
    assert (again["promotion"], again["evaluation"]) == ("promoted", EVAL)
    assert count_rows("model_promotions", db_url) == 1
    assert store.champion("bitcoin")["version"] == v
    with pytest.raises(ValueError, match="'promoted' or 'rejected'"):
        store.record_evaluation(
            "bitcoin", "linear", v, evaluation=EVAL, status="demoted", reason="r", actor="a"
        )


def test_one_champion_per_coin_promoting_demotes_the_former(store, db_url):
    old = _version(db_url, model="linear")
    new = _version(db_url, model="ar")
    eth = _version(db_url, coin="ethereum")
    for coin, model, v in (("bitcoin", "linear", old), ("ethereum", "linear", eth)):
        store.record_evaluation(
            coin, model, v, evaluation=EVAL, status="promoted", reason="promoted", actor="t"
        )
    store.record_evaluation(
        "bitcoin",
        "ar",
        new,
        evaluation=EVAL,
        status="promoted",
        reason="promoted over champion linear",
        actor="crypto_ml_train",
    )
    assert store.info_version("bitcoin", "linear", old)["promotion"] == "demoted"
    assert store.info_version("bitcoin", "linear", old)["promotion_reason"] == f"replaced by ar v{new}"
    assert (store.champion("bitcoin")["model"], store.champion("ethereum")["promotion"]) == ("ar", "promoted")
    trail = [(h["model"], h["before"], h["after"]) for h in store.promotion_history("bitcoin")]
    assert trail == [
        ("linear", None, "promoted"),
        ("linear", "promoted", "demoted"),
        ("ar", None, "promoted"),
    ]


def test_override_by_hand_is_audited(store, db_url):
    v = _version(db_url)
    store.record_evaluation(
        "bitcoin",
        "linear",
        v,
        evaluation=EVAL,
        status="rejected",
        reason="not promoted: MASE 1.03× naive",
        actor="crypto_ml_train",
    )
    with pytest.raises(ValueError, match="who made it"):
        store.set_promotion("bitcoin", "linear", v, "promoted", reason=" ", actor="alice")
    with pytest.raises(ValueError, match="'promoted' or 'demoted'"):
        store.set_promotion("bitcoin", "linear", v, "rejected", reason="r", actor="alice")
    with pytest.raises(LookupError, match="no 'linear' model v99"):
        store.set_promotion("bitcoin", "linear", 99, "promoted", reason="r", actor="alice")
    row = store.set_promotion("bitcoin", "linear", v, "promoted", reason="reviewed by hand", actor="alice")
    assert (row["promotion"], row["promotion_reason"]) == ("promoted", "reviewed by hand")
    store.set_promotion("bitcoin", "linear", v, "promoted", reason="again", actor="alice")  # no change
    store.set_promotion("bitcoin", "linear", v, "demoted", reason="too risky", actor="bob")
    last = store.promotion_history("bitcoin")[-2:]
    assert [(h["before"], h["after"], h["actor"], h["reason"], h["manual"]) for h in last] == [
        ("rejected", "promoted", "alice", "reviewed by hand", True),
        ("promoted", "demoted", "bob", "too risky", True),
    ]
    assert all(h["at"] is not None for h in last)
    assert store.champion("bitcoin") is None


def test_models_command_lists_promotes_and_shows_the_trail(store, db_url, capsys):
    from crypto_ml.cli import main

    v = _version(db_url)
    store.record_evaluation(
        "bitcoin",
        "linear",
        v,
        evaluation=EVAL,
        status="rejected",
        reason="not promoted: MASE 1.03× naive",
        actor="crypto_ml_train",
    )
    assert main(["models", "list", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "rejected" in out and "0.90×" in out and "+4.0%" in out and "not promoted: MASE 1.03× naive" in out
    assert (
        main(
            [
                "models",
                "promote",
                "bitcoin",
                "linear",
                str(v),
                "--by",
                "alice",
                "--reason",
                "reviewed",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    assert f"bitcoin linear v{v}: promoted by alice (reviewed)" in capsys.readouterr().out
    assert main(["models", "list", "--json", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out)[0]["promotion"] == "promoted"
    assert main(["models", "history", "--coin", "bitcoin", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "rejected -> promoted by alice (by hand): reviewed" in out
    assert "- -> rejected by crypto_ml_train (automatic)" in out
    assert (
        main(["models", "demote", "bitcoin", "linear", "7", "--by", "a", "--reason", "r", "--db", db_url])
        == 2
    )
    assert "no 'linear' model v7 for 'bitcoin'" in capsys.readouterr().err


def test_the_web_view_query_shows_status_evaluation_and_trail(store, db_url):
    from crypto_ml.storage.dashboard import model_promotions

    v = _version(db_url)
    ev = {
        "as_of": "2017-01-01",
        "mase_vs_naive": 0.9,
        "intervals": {"80": {"coverage": 81.0, "median_width_pct": 20.0}},
        "strategy": {"total_return": 0.04, "max_drawdown": 0.1, "hit_rate": 0.5, "trades": 6},
    }
    store.record_evaluation(
        "bitcoin",
        "linear",
        v,
        evaluation=ev,
        status="promoted",
        reason="promoted over naive",
        actor="crypto_ml_train",
    )
    store.set_promotion("bitcoin", "linear", v, "demoted", reason="by hand", actor="alice")
    out = model_promotions(coin="bitcoin", url=db_url)
    [row] = out["versions"]
    assert (row["promotion"], row["promotion_reason"]) == ("demoted", "by hand")
    assert row["evaluation"]["mase_vs_naive"] == 0.9 and row["evaluation"]["coverage"] == {"80": 81.0}
    assert row["evaluation"]["total_return"] == 0.04 and "params" not in row
    assert [(c["after"], c["actor"], c["manual"]) for c in out["changes"]] == [
        ("demoted", "alice", True),
        ("promoted", "crypto_ml_train", False),
    ]
    assert model_promotions(coin="ethereum", url=db_url) == {"versions": [], "changes": []}

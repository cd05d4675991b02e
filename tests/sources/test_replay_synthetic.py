"""Replay (history revealed day by day) and labelled synthetic coins."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.sources import CSVSource, ReplaySource, SyntheticSource
from crypto_ml.sources.synthetic import generate_synthetic


def test_replay_reveals_one_day_at_a_time():
    replay = ReplaySource(today="2017-09-20")
    first = CryptoLoader(replay)
    assert first.frame()["date"].max() == pd.Timestamp("2017-09-20")
    replay.advance()
    second = CryptoLoader(replay)
    new = second.frame(since="2017-09-20")
    assert set(new["date"]) == {pd.Timestamp("2017-09-21")}
    assert new["coin"].is_unique  # at most one new row per coin
    assert len(new) == (first.frame()["date"] == pd.Timestamp("2017-09-20")).sum()
    # a coin that did not exist yet appears on its first day, not before
    assert "neblio" not in CryptoLoader(ReplaySource(today="2017-09-11"))
    assert len(CryptoLoader(ReplaySource(today="2017-09-12")).get_df("neblio")) == 1


def test_history_day_maps_a_schedule_onto_the_history():
    day = ReplaySource.history_day(
        dt.datetime(2026, 11, 25, tzinfo=dt.UTC), anchor_real="2026-11-01", anchor_history="2017-06-01"
    )
    assert day == dt.date(2017, 6, 25)


def test_replay_passes_unparseable_rows_on_to_validation(tmp_path):
    (tmp_path / "Foo.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Market Cap\n"
        '"Sep 3, 2017",1,2,0.5,1.5,1,1\n"yesterday",1,2,0.5,1.5,1,1\n"Sep 1, 2017",1,2,0.5,1.5,1,1\n'
    )
    loader = CryptoLoader(ReplaySource(CSVSource(tmp_path), today="2017-09-02"))
    assert loader.get_df("foo")["Date"].tolist() == [pd.Timestamp("2017-09-01")]
    assert [f.rule for f in loader.report.errors] == ["date_invalid"]


@pytest.fixture(scope="module")
def synthetic():
    return CryptoLoader(synthetic=25, seed=7)


def test_synthetic_coins_are_labelled_everywhere(synthetic):
    names = synthetic.get_crypto_names()
    fake = [n for n in names if n.startswith("synthetic-")]
    assert len(names) == 97 + 25 and len(fake) == 25
    table = synthetic.coins()
    assert table.loc[fake, "synthetic"].all() and not table.drop(index=fake)["synthetic"].any()
    assert synthetic.frame().set_index("coin").loc[fake[0], "synthetic"].all()
    assert synthetic.is_synthetic(fake[0]) and not synthetic.is_synthetic("bitcoin")
    assert "bootstrap of" in table.loc[fake[0], "name"]


def test_synthetic_rows_pass_every_validation_rule(synthetic):
    assert synthetic.report.errors == []
    frame = synthetic.frame()
    fake = frame[frame["synthetic"]]
    assert (fake["high"] >= fake["close"]).all() and (fake["close"] >= fake["low"]).all()
    assert (fake["close"] > 0).all()


def test_synthetic_is_seeded_and_keeps_the_templates_volatility():
    real = CryptoLoader()
    a = generate_synthetic(real.frame(), n=5, seed=1)
    b = generate_synthetic(real.frame(), n=5, seed=1)
    c = generate_synthetic(real.frame(), n=5, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["close"].equals(c["close"])
    for _coin, g in a.groupby("coin"):
        template = g["name"].iat[0].split("bootstrap of ")[1].rstrip(")")
        r_syn = np.diff(np.log(g["close"].to_numpy()))
        r_real = np.diff(np.log(real.get_prices(template)[0]))
        # a permutation of blocks of the real returns: same multiset when blocks tile exactly
        assert np.std(r_syn) == pytest.approx(np.std(r_real), rel=0.35)
        assert len(g) == len(real.get_df(template))


def test_synthetic_validates_its_arguments():
    with pytest.raises(ValueError, match="n must be"):
        SyntheticSource(n=-1)
    with pytest.raises(ValueError, match="rows needed"):
        generate_synthetic(CryptoLoader().frame(), n=1, min_rows=10_000)

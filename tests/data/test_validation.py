"""Validation rules: every rule quarantines or flags exactly the rows it should, and says why."""

from __future__ import annotations

import pandas as pd
import pytest

from crypto_ml.data.validation import ERROR, WARNING, parse_and_validate


def raw(rows, coin="testcoin"):
    cols = ["date", "open", "high", "low", "close", "volume", "market_cap"]
    frame = pd.DataFrame(rows, columns=cols, dtype=object)
    frame.insert(0, "coin", coin)
    frame.insert(1, "name", coin.title())
    frame["origin"] = f"{coin}.csv"
    frame["line"] = range(2, len(frame) + 2)
    return frame


GOOD = ["2017-01-01", "10", "12", "9", "11", "1,000", "50,000"]


def test_quirky_numbers_and_dates_are_parsed_not_rejected():
    clean, report = parse_and_validate(
        raw(
            [
                ["Sep 22, 2017", "3,628.02", "3,758.27", "3,553.53", "3,630.7", "1,194,830,000", "-"],
                ["Sep 9, 2017", "1", "2", "0.5", "1.5", "-", ""],
                ["2017-09-10", 1.0, 2.0, 0.5, 1.5, 10, 20],
            ]
        )
    )
    assert report.errors == []
    assert list(clean["date"].dt.strftime("%Y-%m-%d")) == ["2017-09-09", "2017-09-10", "2017-09-22"]
    bitcoin_like = clean.iloc[2]
    assert bitcoin_like["close"] == pytest.approx(3630.7)
    assert bitcoin_like["volume"] == 1_194_830_000
    assert pd.isna(bitcoin_like["market_cap"])  # "-" is missing, not an error
    assert pd.isna(clean.iloc[0]["volume"])


@pytest.mark.parametrize(
    ("row", "rule", "words"),
    [
        (["2017-01-02", "10", "12", "9", "abc", "1", "1"], "number_invalid", "close 'abc' is not a number"),
        (["2017-01-02", "10", "12", "9", "1.2.3", "1", "1"], "number_invalid", "'1.2.3'"),
        (["2017-01-02", "10", "12", "9", "inf", "1", "1"], "number_invalid", "'inf'"),
        (["2017-01-02", "10", "12", "9", "-", "1", "1"], "price_missing", "close is missing"),
        (["2017-01-02", "10", "12", "9", "nan", "1", "1"], "price_missing", "close is missing"),
        (["2017-01-02", "10", "12", "-1", "11", "1", "1"], "price_not_positive", "low -1 is not positive"),
        (["2017-01-02", "0", "12", "9", "11", "1", "1"], "price_not_positive", "open 0 is not positive"),
        (["2017-01-02", "10", "8", "9", "8.5", "1", "1"], "high_below_low", "high 8 is below low 9"),
        (
            ["2017-01-02", "10", "12", "9", "13", "1", "1"],
            "close_outside_range",
            "close 13 is outside [low 9, high 12]",
        ),
        (["not a day", "10", "12", "9", "11", "1", "1"], "date_invalid", "'not a day'"),
        (["", "10", "12", "9", "11", "1", "1"], "date_invalid", "missing or not a date"),
        (["2017-01-02", "10", "12", "9", "11", "-5", "1"], "negative_amount", "volume -5"),
    ],
)
def test_bad_row_is_quarantined_with_coin_row_date_and_rule(row, rule, words):
    clean, report = parse_and_validate(raw([GOOD, row, ["2017-01-03", *GOOD[1:]]]))
    assert len(clean) == 2, "the bad row leaves, the good rows stay"
    assert report.quarantined == 1
    assert {f.line for f in report.errors} == {3}
    [finding] = [f for f in report.errors if f.rule == rule]
    assert finding.coin == "testcoin"
    assert finding.line == 3 and finding.origin == "testcoin.csv"
    assert words in finding.message
    text = str(finding)
    assert "testcoin" in text and "line 3" in text and rule in text
    assert finding.raw["close"] == row[4]


def test_conflicting_duplicate_dates_are_all_quarantined_identical_copies_collapse():
    rows = [
        GOOD,
        ["2017-01-02", "10", "12", "9", "11", "1", "1"],
        ["2017-01-02", "10", "12", "9", "11.5", "1", "1"],  # conflicts with the previous row
        ["2017-01-03", "10", "12", "9", "11", "1", "1"],
        ["2017-01-03", "10", "12", "9", "11", "1", "1"],  # identical copy
    ]
    clean, report = parse_and_validate(raw(rows))
    assert list(clean["date"].dt.day) == [1, 3]
    assert [f.rule for f in report.errors] == ["date_duplicate", "date_duplicate"]
    assert [f.line for f in report.errors] == [3, 4]
    # the 2nd is quarantined, so a gap of one day opens between the 1st and the 3rd
    assert [f.rule for f in report.warnings] == ["date_duplicate_identical", "date_gap"]


def test_gaps_are_reported_not_filled():
    clean, report = parse_and_validate(raw([GOOD, ["2017-01-05", *GOOD[1:]]]))
    assert len(clean) == 2
    [gap] = report.warnings
    assert gap.rule == "date_gap" and gap.severity == WARNING
    assert "3 missing day(s) between 2017-01-01 and 2017-01-05" in gap.message


def test_open_outside_range_is_a_warning_and_the_row_stays():
    clean, report = parse_and_validate(raw([["2017-01-01", "20", "12", "9", "11", "1", "1"]]))
    assert len(clean) == 1
    assert [f.rule for f in report.warnings] == ["open_outside_range"]


def test_one_bad_coin_does_not_stop_the_others():
    frame = pd.concat([raw([GOOD, ["2017-01-02", "x", "1", "1", "1", "1", "1"]], "bad"), raw([GOOD], "good")])
    clean, report = parse_and_validate(frame)
    assert sorted(clean["coin"].unique()) == ["bad", "good"]
    assert {f.coin for f in report.errors} == {"bad"}
    assert report.counts_by_coin().loc["bad", "errors"] == 1
    assert all(f.severity == ERROR for f in report.errors)

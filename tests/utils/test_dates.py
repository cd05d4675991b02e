"""crypto_ml.utils.dates.as_date: the one date coercion."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from crypto_ml.utils.dates import as_date, iso_day

D = dt.date(2017, 6, 1)


@pytest.mark.parametrize(
    "value",
    [
        D,
        dt.datetime(2017, 6, 1, 23, 59),
        pd.Timestamp("2017-06-01 12:00"),
        "2017-06-01",
        "2017-06-01T05:00:00+00:00",
        np.datetime64("2017-06-01T10:00"),
    ],
)
def test_every_day_like_value_is_its_day(value):
    assert as_date(value) == D and iso_day(value) == "2017-06-01"


def test_none_and_blank_are_none_and_bad_input_names_what_it_is():
    assert as_date(None) is None and as_date("") is None
    with pytest.raises(ValueError, match=r"as_of '06/01/2017' is not an ISO date \(YYYY-MM-DD\)"):
        as_date("06/01/2017", what="as_of")
    with pytest.raises(TypeError, match="train_end must be a date.*not int"):
        as_date(20170601, what="train_end")
    with pytest.raises(ValueError, match="as_of is missing"):
        iso_day(None, what="as_of")

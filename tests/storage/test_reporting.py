"""The day's plot picks its forecast panel's coins by absolute expected return and says how."""

import pandas as pd

from crypto_ml.reporting import largest_moves


def test_the_panel_shows_the_largest_moves_either_way():
    table = pd.DataFrame({"coin": ["ark", "btc", "eth", "xrp"], "expected_return_pct": [0.5, -3.0, 1.0, 0.0]})
    assert largest_moves(table, 2) == (["btc", "eth"], "2 largest expected moves")


def test_equal_moves_are_named_as_such_not_as_the_largest():
    table = pd.DataFrame({"coin": ["ark", "btc", "eth"], "expected_return_pct": [0.0, 0.0, 0.0]})
    coins, caption = largest_moves(table, 2)
    assert coins == ["ark", "btc"]
    assert caption == "every expected move is 0.00%: the first 2 coins"

"""The engine's JSON result carries the forecast's prediction intervals."""

from __future__ import annotations

import json

import pytest


def test_predict_result_carries_intervals_as_json(engine_env):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict

    url = engine_env["CRYPTO_ML_DATABASE_URL"]
    result = run_predict(
        EngineRequest(coin="bitcoin", as_of="2017-06-30", model="ar", horizon=5), url=url, cache=ModelCache(4)
    )
    json.dumps(result, allow_nan=False)  # strict JSON on the wire
    assert result["interval_method"] == "conformal"
    assert set(result["intervals"]) == {"80", "95"}
    for level in ("80", "95"):
        lower, upper = result["intervals"][level]["lower"], result["intervals"][level]["upper"]
        assert len(lower) == len(upper) == 5
        assert all(lo < v < hi for lo, v, hi in zip(lower, result["values"], upper))
    assert all(a <= b for a, b in zip(result["intervals"]["95"]["lower"], result["intervals"]["80"]["lower"]))
    other = run_predict(
        EngineRequest(coin="bitcoin", as_of="2017-06-30", model="ar", horizon=5, levels=[50]),
        url=url,
        cache=ModelCache(4),
    )
    assert set(other["intervals"]) == {"50"}


def test_predict_on_a_short_history_has_no_intervals(engine_env):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict

    result = run_predict(
        EngineRequest(coin="neblio", model="naive", horizon=3),
        url=engine_env["CRYPTO_ML_DATABASE_URL"],
        cache=ModelCache(2),
    )
    assert result["intervals"] is None and result["interval_method"] is None and len(result["values"]) == 3
    assert "calibrating them needs at least" in result["interval_reason"]


@pytest.mark.parametrize("levels", [[100], ["high"], 0])
def test_bad_levels_fail_fast_naming_the_coin(engine_env, levels):
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.protocol import EngineInputError
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_predict

    with pytest.raises(EngineInputError, match="coin 'bitcoin': .*level"):
        run_predict(
            EngineRequest(coin="bitcoin", as_of="2017-06-30", model="naive", horizon=3, levels=levels),
            url=engine_env["CRYPTO_ML_DATABASE_URL"],
            cache=ModelCache(2),
        )

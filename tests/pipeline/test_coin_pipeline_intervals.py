"""End to end: the engine's intervals reach the project DB through the coin DAG's ``decide``."""

from __future__ import annotations

from crypto_ml import storage

DAY = "2017-06-06"


def test_prediction_is_stored_with_its_intervals(run_dag, airflow_env, engine_worker):
    result = run_dag(airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": DAY, "model": "naive"})
    assert result["state"] == "success", result["log"][-5000:]
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    [pred] = storage.get_predictions(coin="bitcoin", as_of=DAY, url=url)
    storage.dispose_engine(url)
    assert pred["interval_method"] == "conformal"
    assert set(pred["intervals"]) == {"80", "95"}
    for level in ("80", "95"):
        lower, upper = pred["intervals"][level]["lower"], pred["intervals"][level]["upper"]
        assert len(lower) == len(upper) == len(pred["values"]) == 10
        assert all(lo < v < hi for lo, v, hi in zip(lower, pred["values"], upper))

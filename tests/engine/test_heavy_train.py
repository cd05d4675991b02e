"""Training as heavy work (:func:`crypto_ml.engine.heavy.run_training_distributed`): one
``crypto_ml.train`` task per coin on the ``train`` queue, gathered with a ``ResultSet``; here or on
real workers, the same versions and verdicts, and a re-run trains nothing already trained."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

COINS = ["bitcoin", "ethereum", "litecoin"]
AS_OF = "2017-06-30"
KEYS = ("coin", "as_of", "model", "version", "n_obs", "saved", "promotion")


def _succeeded(workers, *, at_least: int, timeout: float = 20.0) -> int:
    """The ``crypto_ml.train ... succeeded`` lines of the workers' logs, once there are
    ``at_least`` of them (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        done = sum(len(re.findall(r"crypto_ml\.train\[[^\]]+\] succeeded", w.log())) for w in workers)
        if done >= at_least or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def test_training_units_are_the_engine_requests_checked_in_the_caller():
    from crypto_ml.engine.heavy import training_units
    from crypto_ml.engine.protocol import EngineInputError

    assert training_units(["bitcoin"], "ar", AS_OF, params={"lags": 3}) == [
        {"coin": "bitcoin", "as_of": AS_OF, "model": "ar", "params": {"lags": 3}}
    ]
    with pytest.raises(EngineInputError, match="model"):
        training_units(["bitcoin"], "no-such-model", AS_OF)


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_training_on_engine_workers_gives_the_versions_trained_here(broker, start_worker, monkeypatch):
    from crypto_ml.engine.heavy import run_training_distributed

    workers = [start_worker(broker, queues="train", concurrency=1) for _ in range(2)]
    for name, value in workers[0].env.items():
        if name.startswith("CRYPTO_ML_") or name == "AIRFLOW_HOME":
            monkeypatch.setenv(name, value)  # the same project database here as on the workers
    here = run_training_distributed(COINS, "ar", AS_OF, where="local")
    assert [r["coin"] for r in here] == COINS and all(r["saved"] and r["promotion"] for r in here)
    engine = run_training_distributed(COINS, "ar", AS_OF, where="engine", app=workers[0].app, timeout=240)
    # the same fit on the same closes: the model store's same versions, the same verdicts
    assert [{k: r[k] for k in KEYS} for r in engine] == [{k: r[k] for k in KEYS} for r in here]
    assert {r["hostname"] for r in engine} <= {w.node for w in workers}
    # a worker logs "succeeded" just after it stores the result: wait for the lines
    done = _succeeded(workers, at_least=len(COINS))
    assert done == len(COINS)
    again = run_training_distributed(COINS, "ar", AS_OF, where="engine", app=workers[0].app, timeout=60)
    assert again == engine  # the stored answers, under the requests' ids: nothing trained twice
    time.sleep(2)  # time for a task run twice to say so
    assert _succeeded(workers, at_least=done) == done

"""What a trigger may ask, checked where Airflow lets us: light enough for the DAG parser.

Airflow 3.3 validates each DAG param against its schema when a run is created (``airflow dags
trigger --conf``, the REST API, the UI, a ``TriggerDagRun`` from a task): a value of the wrong
type, outside its ``enum`` or its ``minimum``/``maximum`` is refused then and no run exists. It
does not refuse a conf key that is not a param: ``SerializedParamsDict.deep_merge`` adds it as a
new, schema-less param (airflow/serialization/definitions/param.py), so ``{"coins": [...]}`` on
``crypto_ml_coin`` would create a run of the default coin. Such keys are refused by the run's
first task (:func:`check_conf_keys`), before anything is read or written. Checks that need the
market (an ``as_of`` after its last closed day) are made there too: see
:func:`crypto_ml.pipeline.steps.transform`.

The coin runs of one day are named by :func:`coin_run_id`: a run asking for another model or
horizon than the default is another run (``bitcoin__2017-06-29__drift``), never a reset of the
day's default run, which would keep its old conf.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from crypto_ml.pipeline.catalog import DEFAULT_MODEL

#: Default forecast horizon of a pipeline run (days).
DEFAULT_HORIZON = 10

#: Models a pipeline run serves only from a version trained by ``crypto_ml_train`` (the model
#: store), never fitted on the fly: the LSTM's fit takes seconds per coin (two fits with its
#: calibration) and needs TensorFlow on the engine (the ``lstm`` extra). A trained version proves
#: both. The other models fit in milliseconds and are fitted on the fly when no version is trained
#: up to the run's day (recorded as version 0 with the prediction).
TRAINED_ONLY = ("lstm",)


def train_command(model: str, coins: Iterable[str]) -> str:
    """The command that trains ``model`` for ``coins`` (up to the train run's market day)."""
    conf = {"model": model, "coins": sorted(coins)}
    import json

    return f"airflow dags trigger crypto_ml_train --conf '{json.dumps(conf)}'"


class TriggerRefused(ValueError):
    """A trigger asked for something the run cannot do: one line saying what and what to do."""


def check_conf_keys(dag_id: str, conf: Mapping[str, Any] | None, valid: Iterable[str]) -> None:
    """Refuse conf keys that are not params of the DAG, naming them and the valid keys.

    :raises TriggerRefused: e.g. ``crypto_ml_coin does not take conf key 'coins' (did you mean
        'coin'?); its keys are: as_of, coin, horizon, model``.
    """
    valid = sorted(valid)
    unknown = sorted(set(conf or {}) - set(valid))
    if not unknown:
        return
    named = []
    for key in unknown:
        near = difflib.get_close_matches(key, valid, n=1)
        named.append(f"{key!r} (did you mean {near[0]!r}?)" if near else repr(key))
    what = "conf key" if len(unknown) == 1 else "conf keys"
    raise TriggerRefused(
        f"{dag_id} does not take {what} {', '.join(named)}; its keys are: {', '.join(valid)}"
    )


def check_run_conf(dag_run: Any, dag: Any) -> None:
    """:func:`check_conf_keys` for a running DAG run (its raw conf against the DAG's params)."""
    check_conf_keys(dag.dag_id, getattr(dag_run, "conf", None), dag.params.keys())


def coin_run_id(coin: str, day: str, *, model: str = DEFAULT_MODEL, horizon: int = DEFAULT_HORIZON) -> str:
    """The run id of a coin's run for a day: ``<coin>__<day>``, followed by ``__<model>`` and
    ``__h<horizon>`` when they are not the defaults. Every value of a master trigger that changes
    what a coin run computes is in its id, so a run id names one conf: re-triggering the day with
    another model creates that model's runs next to the default's, and a re-run of the same conf
    finds its own runs."""
    run_id = f"{coin}__{day}"
    if model != DEFAULT_MODEL:
        run_id += f"__{model}"
    if int(horizon) != DEFAULT_HORIZON:
        run_id += f"__h{int(horizon)}"
    return run_id


def coin_runs(coins: Iterable[str], day: str, *, model: str, horizon: int) -> list[dict[str, Any]]:
    """One ``{"trigger_run_id", "conf"}`` per coin: the master's fan-out for a day."""
    return [
        {
            "trigger_run_id": coin_run_id(coin, day, model=model, horizon=horizon),
            "conf": {"coin": coin, "as_of": day, "horizon": int(horizon), "model": model},
        }
        for coin in coins
    ]

"""Heavy work on the engine: backtests, strategy backtests and training, one task per coin and model.

>>> spec = BacktestSpec(["bitcoin", "ethereum"], ["naive", "drift", "ar"], folds=6)
>>> result = run_backtest_distributed(spec, where="engine", progress=True)
>>> result.summary                  # what crypto_ml.evaluation.run_backtest returns, the same numbers

One call, two places (``where``):

- ``"local"``: the units run one after the other in this process (a quick look, no worker);
- ``"engine"``: each unit is a ``crypto_ml.heavy.backtest`` task on the ``heavy`` queue
  (:data:`~crypto_ml.settings.engine.HEAVY_QUEUE`), sent as one Celery ``group`` and gathered with
  its ``ResultSet`` (``join_native`` where the result backend has it), so every worker that
  consumes ``heavy`` takes part: the embedded default's worker, or every worker of the stack
  (``celery -A crypto_ml worker -Q predict,train,heavy``).

Either way the units are those of :func:`crypto_ml.evaluation.units.backtest_units` and their
answers are joined by :func:`~crypto_ml.evaluation.units.join_backtest`, so the result is exactly
``run_backtest``'s.

The same machinery (:func:`run_units`: the ids, the resume, the group, the join, the bar) runs
every kind of heavy work (:data:`KINDS`):

- :func:`run_strategy_distributed`: the strategy backtest's point-in-time forecasts, one
  ``crypto_ml.heavy.forecast`` task per coin and model
  (:func:`~crypto_ml.evaluation.units.strategy_units`), gathered, then the portfolio replay here
  (it is cross-coin: only the forecasting splits); the report is ``run_strategy``'s;
- :func:`run_training_distributed`: training, one ``crypto_ml.train`` task per coin on the
  ``train`` queue: the engine's own training task (fit on the coin's stored closes up to the day,
  save the version, evaluate it point in time and promote it or not), not a copy of it; its
  request is a coin and a day, since training reads the project database the DAG polled (every
  worker sees it), not closes the caller ships. Its task id is the uuid5 of the request, so a
  re-run trains only the coins without a result; a redelivered copy trains again but saves the
  same version (the model store keys versions by fingerprint).

What a message carries: the unit itself, JSON (the coin's closes up to the window's end, their
dates, the settings), not a name of the data for the worker to read. A backtest reads any source
(``--source``, ``--market``, synthetic coins, ``--end``): only the caller is sure to see that data,
and a worker reading "the same" source later (an exchange, a file on another host) could score other
closes. The payload is small (a 1,800-day coin is about 60 kB of JSON), next to seconds of fitting.

Resuming: a unit's task id is a uuid5 of its JSON (:func:`unit_task_id`), so the same unit on the
same data has the same id on every run. Before sending, the caller reads the result backend and
sends only the units without a result; a run interrupted half-way (a worker killed, the caller
stopped) is finished by calling it again, which computes only what is missing. A unit delivered
twice (the message of the interrupted run and the one of the resumed run, or a redelivery) is
computed once: the task returns the stored answer when its id already has one
(:func:`once`). Results are kept ``CRYPTO_ML_ENGINE_RESULT_EXPIRES`` seconds (a day).

Progress: a tqdm bar in the caller (one tick per unit) and, in the worker's log, one line per unit
with its place in the run (``backtest 17/291 bitcoin ar: 12 folds, 0 skipped, 0.41 s``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crypto_ml.settings.engine import HEAVY_QUEUE, injected_delay

if TYPE_CHECKING:
    from celery import Celery, Task

    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.evaluation.backtest import BacktestResult
    from crypto_ml.evaluation.strategy import StrategyReport
    from crypto_ml.evaluation.units import BacktestSpec

log = logging.getLogger(__name__)

#: The Celery task of one backtest unit (routed to the ``heavy`` queue by its ``crypto_ml.heavy.`` name).
BACKTEST_TASK = "crypto_ml.heavy.backtest"
#: The Celery task of one strategy-forecast unit (:func:`~crypto_ml.evaluation.units.forecast_unit`).
FORECAST_TASK = "crypto_ml.heavy.forecast"
#: The places a heavy call runs.
WHERE = ("local", "engine")
#: The custom message header with a unit's place in its run, ``"17/291"``, for the worker's log.
POSITION_HEADER = "heavy_position"
#: Namespace of the units' task ids (:func:`unit_task_id`).
UNIT_NAMESPACE = uuid.UUID("0b7e8d6c-3f0a-4c55-9d2e-6865617679ff")


def unit_task_id(task: str, unit: Mapping[str, Any]) -> str:
    """The task id of one unit: a uuid5 of the task name and the unit's canonical JSON (the same
    unit on the same data, the same id)."""
    text = json.dumps(unit, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return str(uuid.uuid5(UNIT_NAMESPACE, f"{task}|{text}"))


def once(task: Task, work: Callable[..., dict[str, Any]], unit: Mapping[str, Any]) -> dict[str, Any]:
    """``work(**unit)`` in a Celery task, at most once per task id: the stored answer when the result
    backend already has one for ``task``'s id, else the answer computed now (with the worker's
    ``hostname``, ``pid`` and ``seconds`` in ``"ran"``). Logs one line either way."""
    import os

    started = time.perf_counter()
    request = task.request
    where = f"{task.name.rsplit('.', 1)[-1]} {getattr(request, POSITION_HEADER, None) or '?'} "
    where += f"{unit.get('coin')} {unit.get('model')}"
    meta = task.backend.get_task_meta(request.id)
    if meta.get("status") == "SUCCESS" and isinstance(meta.get("result"), dict):
        log.info("%s: already done by %s, not computed again", where, meta["result"]["ran"]["hostname"])
        return meta["result"]
    answer = work(**unit)
    if delay := injected_delay():  # TEST ONLY (CRYPTO_ML_ENGINE_TEST_DELAY): after the work
        time.sleep(delay)
    seconds = time.perf_counter() - started
    answer["ran"] = {"hostname": request.hostname, "pid": os.getpid(), "seconds": seconds}
    log.info("%s: %s, %.2f s", where, describe(answer), seconds)
    return answer


def describe(answer: Mapping[str, Any]) -> str:
    """What a unit's answer holds, for the log line: ``12 folds, 0 skipped`` (a backtest unit) or
    ``90 days`` (a strategy-forecast unit)."""
    if "folds" in answer:
        return f"{len(answer['folds'])} folds, {len(answer.get('skipped', ()))} skipped"
    return f"{len(answer.get('forecasts', ()))} days"


def _refusing(unit_work: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``unit_work(coin, model, closes, dates, **settings)`` with a bad unit as an
    :class:`~crypto_ml.engine.protocol.EngineInputError` naming it (no retry can serve it)."""
    from crypto_ml.engine.protocol import EngineInputError

    def work(*, coin: str, model: str, closes: list, dates: list, **settings: Any) -> dict[str, Any]:
        try:
            return unit_work(coin, model, closes, dates, **settings)
        except (TypeError, KeyError, ValueError) as exc:
            raise EngineInputError(f"coin {coin!r} model {model!r}: {type(exc).__name__}: {exc}") from None

    return work


def backtest_unit_task(task: Task, unit: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``crypto_ml.heavy.backtest``: :func:`~crypto_ml.evaluation.units.backtest_unit`
    of the unit in the message's keyword arguments, once per task id."""
    from crypto_ml.evaluation.units import backtest_unit

    return once(task, _refusing(backtest_unit), unit)


def forecast_unit_task(task: Task, unit: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``crypto_ml.heavy.forecast``: :func:`~crypto_ml.evaluation.units.forecast_unit`
    of the unit in the message's keyword arguments, once per task id."""
    from crypto_ml.evaluation.units import forecast_unit

    return once(task, _refusing(forecast_unit), unit)


def _backtest_here(unit: Mapping[str, Any]) -> dict[str, Any]:
    from crypto_ml.evaluation.units import backtest_unit

    settings = {k: v for k, v in unit.items() if k not in ("coin", "model", "closes", "dates")}
    return backtest_unit(unit["coin"], unit["model"], unit["closes"], unit["dates"], **settings)


def _forecast_here(unit: Mapping[str, Any]) -> dict[str, Any]:
    from crypto_ml.evaluation.units import forecast_unit

    settings = {k: v for k, v in unit.items() if k not in ("coin", "model", "closes", "dates")}
    return forecast_unit(unit["coin"], unit["model"], unit["closes"], unit["dates"], **settings)


def _train_here(unit: Mapping[str, Any]) -> dict[str, Any]:
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.engine.service import run_train

    return run_train(EngineRequest.from_json(dict(unit), task="train"))


@dataclass(frozen=True)
class Kind:
    """One kind of heavy work: its Celery task, the queue it is sent to and its body run here."""

    task: str
    queue: str
    here: Callable[[Mapping[str, Any]], dict[str, Any]]


def _kinds() -> dict[str, Kind]:
    from crypto_ml.engine.protocol import TRAIN_TASK
    from crypto_ml.settings.engine import TRAIN_QUEUE

    return {
        BACKTEST_TASK: Kind(BACKTEST_TASK, HEAVY_QUEUE, _backtest_here),
        FORECAST_TASK: Kind(FORECAST_TASK, HEAVY_QUEUE, _forecast_here),
        TRAIN_TASK: Kind(TRAIN_TASK, TRAIN_QUEUE, _train_here),
    }


#: Task name -> :class:`Kind`, for :func:`run_units`.
KINDS: dict[str, Kind] = _kinds()


def run_units(
    task: str,
    units: Sequence[Mapping[str, Any]],
    *,
    where: str = "local",
    app: Celery | None = None,
    progress: bool = False,
    timeout: float | None = None,
    desc: str | None = None,
) -> list[dict[str, Any]]:
    """The answers of ``units`` (JSON kwargs of ``task``, one of :data:`KINDS`), in their order,
    computed ``where``: one after the other here (``"local"``), or as one group of ``task`` tasks on
    the kind's queue, gathered with a ``ResultSet`` (``"engine"``; only the units without a stored
    result are sent, see the module docstring). ``progress``: a tqdm bar, one tick per unit."""
    if where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
    if task not in KINDS:
        raise ValueError(f"task must be one of {', '.join(KINDS)}, got {task!r}")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(units), unit="unit", desc=f"{desc or task.rsplit('.', 1)[-1]} ({where})")
    try:
        if where == "local":
            return _run_here(KINDS[task].here, units, bar)
        return _run_on_engine(task, units, app=app, bar=bar, timeout=timeout, queue=KINDS[task].queue)
    finally:
        if bar is not None:
            bar.close()


def run_backtest_distributed(
    spec: BacktestSpec,
    *,
    loader: CryptoLoader | None = None,
    where: str = "local",
    app: Celery | None = None,
    progress: bool = False,
    timeout: float | None = None,
) -> BacktestResult:
    """:func:`crypto_ml.evaluation.run_backtest` of ``spec`` (``run_backtest(**spec.arguments())``'s
    result), one unit per coin and model, run ``where`` (``"local"`` or ``"engine"``, see the module
    docstring).

    :param spec: a :class:`~crypto_ml.evaluation.units.BacktestSpec`.
    :param app: the engine's app to send through (default: the environment's sender app,
        :func:`crypto_ml.engine.client.sender_app`); only with ``where="engine"``.
    :param progress: a tqdm bar, one tick per unit.
    :param timeout: seconds to wait for the engine's answers (``None``: no limit); on Celery's
        ``TimeoutError`` (or a unit's error) the units already done are kept, and the same call
        resumes.
    """
    from crypto_ml.evaluation.backtest import BacktestResult
    from crypto_ml.evaluation.units import BacktestSpec, backtest_from_json

    if not isinstance(spec, BacktestSpec):
        raise TypeError(f"run_backtest_distributed takes a BacktestSpec, got {type(spec).__name__}")
    if where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
    units = spec.units(loader)
    todo = [u for u in units if not isinstance(u, BacktestResult)]
    answers = run_units(
        BACKTEST_TASK, todo, where=where, app=app, progress=progress, timeout=timeout, desc="backtest"
    )
    done = iter(answers)
    return spec.join([u if isinstance(u, BacktestResult) else backtest_from_json(next(done)) for u in units])


def run_strategy_distributed(
    coins: Sequence[str] | None = None,
    models: Sequence[str] = ("naive", "drift", "ar"),
    rules: Mapping[str, Any] | None = None,
    *,
    where: str = "local",
    app: Celery | None = None,
    progress: bool = False,
    timeout: float | None = None,
    **settings: Any,
) -> StrategyReport:
    """:func:`crypto_ml.evaluation.run_strategy` (the same arguments, ``settings`` its keyword
    ones, and the same report): the point-in-time forecasts as one unit per coin and model, run
    ``where`` (see :func:`run_units`), then every rule replayed over them here. ``timings`` hold
    the seconds the units took where they ran (summed per model) and the replays'."""
    from crypto_ml.evaluation.strategy import plan_strategy, strategy_report
    from crypto_ml.evaluation.units import strategy_forecasts, strategy_units

    if where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
    plan = plan_strategy(coins, models, rules, **settings)
    answers = run_units(
        FORECAST_TASK,
        strategy_units(plan),
        where=where,
        app=app,
        progress=progress,
        timeout=timeout,
        desc="strategy forecasts",
    )
    return strategy_report(plan, *strategy_forecasts(plan, answers))


def training_units(
    coins: Sequence[str], model: str, as_of: Any, *, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ``crypto_ml.train`` request (its JSON: coin, day, model, params) of ``model`` for each
    coin on ``as_of``, checked here (:class:`~crypto_ml.engine.request.EngineRequest`): a bad one
    is refused before anything is sent."""
    from crypto_ml.engine.request import EngineRequest

    day = None if as_of is None else str(as_of)[:10]
    return [
        EngineRequest.build("train", coin=coin, as_of=day, model=model, model_params=params).to_json()
        for coin in coins
    ]


def run_training_distributed(
    coins: Sequence[str],
    model: str,
    as_of: Any,
    *,
    params: Mapping[str, Any] | None = None,
    where: str = "local",
    app: Celery | None = None,
    progress: bool = False,
    timeout: float | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` for every coin on ``as_of`` (one ``crypto_ml.train`` unit per coin: fit, save
    the version, evaluate and promote it; see the module docstring), run ``where``; the engine's
    answers (``{coin, as_of, model, version, promotion, hostname, ...}``) in the coins' order."""
    units = training_units(coins, model, as_of, params=params)
    from crypto_ml.engine.protocol import TRAIN_TASK

    return run_units(
        TRAIN_TASK, units, where=where, app=app, progress=progress, timeout=timeout, desc=f"train {model}"
    )


def _run_here(
    here: Callable[[Mapping[str, Any]], dict[str, Any]], units: Sequence[Mapping[str, Any]], bar: Any
) -> list[dict[str, Any]]:
    import os

    answers = []
    for unit in units:
        started = time.perf_counter()
        answer = here(unit)
        answer.setdefault(
            "ran", {"hostname": "local", "pid": os.getpid(), "seconds": time.perf_counter() - started}
        )
        answers.append(answer)
        if bar is not None:
            bar.update(1)
    return answers


def _run_on_engine(
    task: str,
    units: Sequence[Mapping[str, Any]],
    *,
    app: Celery | None,
    bar: Any,
    timeout: float | None,
    queue: str = HEAVY_QUEUE,
) -> list[dict[str, Any]]:
    """The answers of ``units`` (in their order) from ``task`` tasks on ``queue``: a group of the
    units without a stored result, then one ``ResultSet`` join over all of them."""
    from celery import group
    from celery.result import ResultSet

    from crypto_ml.engine.client import sender_app

    app = app if app is not None else sender_app()
    ids = [unit_task_id(task, unit) for unit in units]
    unique = dict(zip(ids, units))  # the same unit twice in a run is one task
    stored = {i for i in unique if app.backend.get_task_meta(i).get("status") == "SUCCESS"}
    missing = [i for i in unique if i not in stored]
    total = len(unique)
    log.info(
        "%s: %d units, %d already done, %d sent to the %r queue",
        task,
        total,
        len(stored),
        len(missing),
        queue,
    )
    if missing:
        position = {i: n for n, i in enumerate(unique, 1)}
        group(
            app.signature(
                task,
                kwargs=dict(unique[i]),
                task_id=i,
                queue=queue,
                routing_key=queue,
                headers={POSITION_HEADER: f"{position[i]}/{total}"},
            )
            for i in missing
        ).apply_async()
    results = ResultSet([app.AsyncResult(i) for i in unique], app=app)
    answers: dict[str, dict[str, Any]] = {}

    def gathered(task_id: str, value: dict[str, Any]) -> None:
        answers[task_id] = value
        if bar is not None:
            bar.update(1)

    join = results.join_native if results.supports_native_join else results.join
    if bar is not None:
        bar.update(len(ids) - total)  # the repeated units
    join(timeout=timeout, callback=gathered, propagate=True)
    return [answers[i] for i in ids]

"""Operator: submit a prediction or training task to the prediction engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.triggers.base import StartTriggerArgs

from crypto_ml.engine.request import SUBMIT_ARGUMENTS

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crypto_ml.hooks.engine import CryptoEngineHook


class EngineSubmitOperator(BaseOperator):
    """Send ``crypto_ml.predict`` or ``crypto_ml.train`` to the engine; return the engine task id.

    Pair it with :class:`~crypto_ml.sensors.engine.EngineTaskSensor` to wait for the result
    in the triggerer, or set ``wait_for_completion``: both wait through the same trigger
    (:class:`~crypto_ml.triggers.engine.EngineTaskTrigger`), which ends the task in the triggerer.
    Sending imports neither the worker's tasks nor the data (:mod:`crypto_ml.engine.client`).
    The engine task id is derived from this task instance and its
    try number, so every attempt is traceable in Flower; the engine's writes are idempotent, so a
    retried submission never stores a prediction twice.

    :param task: ``"predict"`` or ``"train"``.
    :param coin: coin id (templated; default: the ``coin`` of ``closes`` when that is the
        transform's dict).
    :param as_of: last day of data the model may use, ``YYYY-MM-DD`` (templated; default: the
        ``as_of`` of ``closes`` when that is the transform's dict, else the market day of the run's
        logical date, as the coin DAG's ``market_day`` macro).
    :param model: model name, e.g. ``"linear"`` (templated).
    :param horizon: days to forecast (predict only; templated).
    :param closes: the closes to predict from (templated): a list, a dict with a ``"closes"`` key,
        :class:`~crypto_ml.operators.transform.CoinTransformOperator`'s output (coin and day, the
        closes stay in the project database: ``history="database"``), or None to let the engine
        read them from ``history``.
    :param history: where the engine reads the closes when none are sent: ``"database"`` (the
        project database, where the transform validated them: the request is a coin and a day,
        and with ``coin``/``as_of`` from params no XCom is read at all) or ``"bundled"`` (the
        bundled dataset; the default when nothing says otherwise).
    :param model_params: model hyperparameters (``params`` is Airflow's, for DAG params).
    :param engine_conn_id: Connection id of the engine (templated; see
        :class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
    :param wait_for_completion: wait until the engine task is done; this task's XCom is then the
        engine's result instead of its id; ``timeout`` bounds the wait, a failed engine task fails
        this task. Deferrable: the wait ends in the triggerer (no worker process resumes the task);
        otherwise the worker polls.
    :param poll_interval: longest interval between two reads of the result while waiting (s).
    :param timeout: seconds to wait for the engine before failing, when waiting.
    :param deferrable: wait in the triggerer (default: Airflow's ``[operators] default_deferrable``,
        which the project's ``airflow.cfg`` sets).
    :param start_from_trigger: send from the triggerer (:class:`~crypto_ml.triggers.engine.
        EngineSubmitTrigger`; needs ``deferrable``): the scheduler hands the task to the triggerer,
        which renders the templated arguments, sends the request and ends the task there (with the
        wait too, when ``wait_for_completion``): no worker process starts. Templated arguments are
        rendered as text there (an XCom pull of a dict arrives as its JSON, which the trigger reads).
    """

    template_fields: Sequence[str] = ("coin", "as_of", "model", "horizon", "closes", "engine_conn_id")
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        task: str = "predict",
        coin: str | None = None,
        as_of: str | None = None,
        model: str = "naive",
        horizon: int | str = 10,
        closes: Any = None,
        history: str | None = None,
        model_params: dict[str, Any] | None = None,
        engine_conn_id: str = "crypto_ml_engine",
        wait_for_completion: bool = False,
        poll_interval: float = 5.0,
        timeout: float = 3600.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if task not in ("predict", "train"):
            raise ValueError(f"task must be 'predict' or 'train', got {task!r}")
        if coin is None and closes is None:
            raise ValueError(f"{self.task_id}: give coin (and as_of), or closes as the transform's output")
        self.task = task
        self.coin = coin
        self.as_of = as_of
        self.model = model
        self.horizon = horizon
        self.closes = closes
        self.history = history
        self.model_params = model_params
        self.engine_conn_id = engine_conn_id
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.deferrable = deferrable
        self.start_from_trigger = deferrable and start_from_trigger
        if self.start_from_trigger:
            from crypto_ml.triggers.engine import trigger_template

            arguments = {
                name: trigger_template(getattr(self, name), as_json=name == "closes")
                for name in SUBMIT_ARGUMENTS
            }
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls="crypto_ml.triggers.engine.EngineSubmitTrigger",
                trigger_kwargs={
                    "request_kind": task,
                    **arguments,
                    "engine_conn_id": engine_conn_id,
                    "wait": wait_for_completion,
                    "poll_interval": poll_interval,
                    "timeout": timeout,
                },
                next_method="execute_complete",
                next_kwargs=None,
                timeout=timedelta(seconds=timeout + 120) if wait_for_completion else timedelta(seconds=600),
            )

    @staticmethod
    def engine_task_id(context: Context) -> str:
        """The engine task id of this task instance's try: the same on a resume, new per retry."""
        from crypto_ml.engine.client import engine_task_id_of

        ti = context["ti"]
        return engine_task_id_of(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)

    @cached_property
    def hook(self) -> CryptoEngineHook:
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id)

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from crypto_ml.engine.request import EngineRequest
        from crypto_ml.pipeline.catalog import run_market_day

        arguments = {name: getattr(self, name) for name in SUBMIT_ARGUMENTS}
        try:
            request = EngineRequest.build(
                self.task,
                **arguments,
                run_id=context["ti"].run_id,
                default_as_of=lambda: run_market_day(context["dag_run"]),
            )
            submitted = self.hook.submit(request, task_id=self.engine_task_id(context))
        except ValueError as exc:  # EngineInputError, a bad Connection: a request no retry can cure
            raise AirflowFailException(str(exc)) from None
        self.log.info(
            "submitted %s for %s as of %s (model %s): engine task %s",
            request.task_name,
            request.coin,
            request.as_of,
            request.model,
            submitted,
        )
        if not self.wait_for_completion:
            return submitted
        if not self.deferrable:
            return self._wait_here(submitted)
        import time

        from crypto_ml.triggers.engine import EngineTaskTrigger

        self.defer(
            trigger=EngineTaskTrigger(
                engine_task_id=submitted,
                engine_conn_id=self.engine_conn_id,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                started_at=time.time(),
                end_task=True,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 120),
        )

    def _wait_here(self, engine_task_id: str) -> Any:
        """Not deferrable: poll the result on this worker (the trigger's growing intervals)."""
        from airflow.sdk.exceptions import AirflowFailException

        from crypto_ml.engine.client import EngineTaskFailed, wait

        try:
            result = wait(
                engine_task_id,
                timeout=self.timeout,
                interval=0.05,
                max_interval=self.poll_interval,
                app=self.hook.app,
            )
        except (EngineTaskFailed, TimeoutError) as exc:  # as the trigger: no retry helps
            raise AirflowFailException(f"engine task {exc}") from None
        self._log_result(result)
        return result

    def _log_result(self, result: Any) -> None:
        if isinstance(result, dict):
            self.log.info(
                "engine %s done: %s",
                self.task,
                {k: result.get(k) for k in ("coin", "as_of", "model", "version", "n_obs", "hostname")},
            )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the wait when the trigger did not end the task itself (the result backend
        was unreachable): a failure the task's retries may cure."""
        from crypto_ml.sensors.engine import finish_wait

        result = finish_wait(event, self.engine_task_id(context), self.hook)
        self._log_result(result)
        return result

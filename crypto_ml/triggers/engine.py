"""Triggers of the prediction engine: wait for a task (:class:`EngineTaskTrigger`), or send a
request and wait (:class:`EngineSubmitTrigger`), in the triggerer.

The one way to wait for an engine task: :class:`~crypto_ml.sensors.engine.EngineTaskSensor`
(started in the triggerer, ``start_from_trigger``) and
:class:`~crypto_ml.operators.engine.EngineSubmitOperator` with ``wait_for_completion=True``
(defers into it after sending) both use it, and with ``end_task=True`` (their default) the task
ends in the triggerer: no worker process starts to resume it. The request itself is built by
:meth:`crypto_ml.engine.request.EngineRequest.build`, as on a worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from crypto_ml.engine.request import SUBMIT_ARGUMENTS

if TYPE_CHECKING:
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.hooks.engine import CryptoEngineHook

#: Seconds for which a triggerer process reuses its lookup of an engine Connection
#: (``CryptoEngineHook(connection_ttl=...)``). Every submit and every wait would otherwise look it
#: up, and in the triggerer each lookup is a round trip through the supervisor, which serves the
#: requests of every trigger in turn with its own loop: two of a coin's four round trips there.
#: A Connection changed in the UI reaches new triggers within this time.
ENGINE_CONNECTION_TTL = 60.0


def trigger_template(value: Any, *, as_json: bool = False) -> Any:
    """An upstream task's output (``submit.output``) as the Jinja template that pulls it: the
    trigger's arguments are stored as JSON and rendered in the triggerer, as text (``as_json``:
    the value's JSON, for a dict or a list, which the trigger decodes).

    The pull names the map index (this task's own, as Airflow resolves an ``XComArg`` between
    tasks of one mapped group): without it ``xcom_pull`` asks for every map index
    (``GetXComSequenceSlice``), a request the triggerer does not serve, and the sensor would stay
    deferred forever."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if isinstance(value, PlainXComArg):
        pull = (
            f"ti.xcom_pull(task_ids={value.operator.task_id!r}, key={value.key!r}, map_indexes=ti.map_index)"
        )
        return f"{{{{ {pull} | tojson }}}}" if as_json else f"{{{{ {pull} }}}}"
    return value


def decode_rendered(value: Any) -> Any:
    """A templated argument as rendered in the triggerer: the triggerer renders trigger arguments
    with a plain (text) Jinja environment, so structured values arrive as JSON text (the template
    ends in ``| tojson``); Python values pass through."""
    if isinstance(value, str) and value[:1] and value[0] in '[{"':
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(
                f"a templated argument rendered as text that is not JSON: {value[:80]!r}"
            ) from None
    return value


class EngineTaskTrigger(BaseTrigger):
    """Watch the engine's result backend until a task succeeds, fails, or ``timeout`` passes.

    The backend is read at growing intervals: ``first_poll`` seconds after the start, then
    doubling up to ``poll_interval`` (a warm prediction is back within a fraction of a second, a
    training may take minutes; a fixed 1 s poll of 1,000 waits would cost the triggerer a core).

    With ``end_task=False`` it fires one :class:`TriggerEvent`, a dict with ``status``:

    - ``"success"``: ``result`` holds the task's return value;
    - ``"failed"``: the task ran and failed (``message`` is its error);
    - ``"timeout"``: the task was still ``state`` after ``timeout`` seconds (no worker took it, the
      task was lost, or it is too slow);
    - ``"error"``: the result backend could not be read ``max_errors`` times in a row.

    With ``end_task=True`` the task ends here: success is a :class:`TaskSuccessEvent` whose XCom
    ``return_value`` is the result; a failed engine task or a timeout is a :class:`TaskFailedEvent`
    (no retry helps; the reason is in the task's log). Only ``"error"`` (the backend unreachable) is
    still a plain event, so the task resumes on a worker and fails there, with its retries.

    :param engine_task_id: the Celery task id returned by the submit operator. When a task starts
        in the triggerer, Airflow renders the trigger's attributes named in the task's
        ``template_fields`` there, so this may be a template (e.g. an XCom pull).
    :param engine_conn_id: Connection of the engine (see :class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
    :param poll_interval: longest interval between two reads of the result backend (s).
    :param first_poll: first interval (s); doubled after every read.
    :param timeout: seconds from ``started_at`` after which the wait gives up.
    :param started_at: epoch seconds when the wait began (kept across triggerer restarts; default:
        when the trigger first runs).
    :param max_errors: consecutive backend errors tolerated before giving up.
    :param end_task: end the task in the triggerer (task-end events) instead of resuming it.
    """

    #: Every ``__init__`` argument, as :meth:`serialize` returns them.
    arguments: tuple[str, ...] = (
        "engine_task_id",
        "engine_conn_id",
        "poll_interval",
        "first_poll",
        "timeout",
        "started_at",
        "max_errors",
        "end_task",
    )

    def __init__(
        self,
        *,
        engine_task_id: str,
        engine_conn_id: str = "crypto_ml_engine",
        poll_interval: float = 2.0,
        first_poll: float = 0.05,
        timeout: float = 600.0,
        started_at: float | None = None,
        max_errors: int = 5,
        end_task: bool = False,
    ) -> None:
        super().__init__()
        self.engine_task_id = engine_task_id
        self.engine_conn_id = engine_conn_id
        self.poll_interval = poll_interval
        self.first_poll = first_poll
        self.timeout = timeout
        self.started_at = started_at
        self.max_errors = max_errors
        self.end_task = end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "crypto_ml.triggers.engine.EngineTaskTrigger", self._arguments()

    def _arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.arguments}

    @cached_property
    def hook(self) -> CryptoEngineHook:
        """The engine's hook, made once per trigger (first used in :meth:`run`, after the
        triggerer rendered ``engine_conn_id``): its Connection is looked up at most once per
        :data:`ENGINE_CONNECTION_TTL` in this process, not per trigger nor per read of the result
        backend (in the triggerer each lookup is a round trip through the triggerer's supervisor
        and its execution API to the metadata DB)."""
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id, connection_ttl=ENGINE_CONNECTION_TTL)

    def _get_state(self) -> tuple[str, Any]:
        return self.hook.get_state(self.engine_task_id)

    def _end(self, status: str, **fields: Any) -> TriggerEvent:
        """The event of the wait's end: a task-end event when this trigger ends the task."""
        if not self.end_task or status == "error":
            return TriggerEvent({"engine_task_id": self.engine_task_id, "status": status, **fields})
        if status == "success":
            result = fields["result"]
            if isinstance(result, dict):
                self.log.info(
                    "engine task %s done: %s",
                    self.engine_task_id,
                    {k: result.get(k) for k in ("coin", "as_of", "model", "version", "hostname")},
                )
            return TaskSuccessEvent(xcoms={"return_value": result})
        self.log.error("engine task %s %s: %s", self.engine_task_id, fields.get("state"), fields["message"])
        return TaskFailedEvent()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Rendered from an XCom that a trigger pushed, the id may arrive as its JSON text.
        self.engine_task_id = str(decode_rendered(self.engine_task_id))
        started_at = self.started_at if self.started_at is not None else time.time()
        errors, state, delay = 0, None, self.first_poll
        while True:
            try:
                # The result backend client is blocking: keep it off the triggerer's event loop.
                state, value = await asyncio.to_thread(self._get_state)
                errors = 0
            except Exception as exc:  # noqa: BLE001 - any backend error counts towards max_errors
                errors += 1
                self.log.warning("engine result backend error %d/%d: %s", errors, self.max_errors, exc)
                if errors >= self.max_errors:
                    yield self._end(
                        "error",
                        message=f"the engine's result backend failed {errors} "
                        f"times in a row: {type(exc).__name__}: {exc}",
                    )
                    return
            else:
                if state == "SUCCESS":
                    yield self._end("success", result=value)
                    return
                if state in ("FAILURE", "REVOKED"):
                    yield self._end(
                        "failed", state=state, message=f"engine task {self.engine_task_id} {state}: {value}"
                    )
                    return
            waited = time.time() - started_at
            if waited >= self.timeout:
                yield self._end(
                    "timeout",
                    state=state,
                    message=(
                        f"engine task {self.engine_task_id} still {state or 'unknown'} after {waited:.0f} s "
                        f"(timeout {self.timeout:.0f} s): no engine worker took it (broker down or no worker "
                        "on the queue?), or the task was lost"
                    ),
                )
                return
            await asyncio.sleep(min(delay, self.poll_interval, max(0.0, self.timeout - waited)))
            delay = min(delay * 2, self.poll_interval)


class EngineSubmitTrigger(EngineTaskTrigger):
    """Send a request to the engine from the triggerer, then end the task with the engine task id
    as its XCom, or, with ``wait=True``, wait for the result there too (as
    :class:`EngineTaskTrigger` does with ``end_task=True``).

    Used by :class:`~crypto_ml.operators.engine.EngineSubmitOperator` with
    ``start_from_trigger=True``: the scheduler hands the task straight to the triggerer, which
    renders the operator's templated arguments (``coin``, ``as_of``, ``model``, ``horizon``,
    ``closes``, ``engine_conn_id``) and runs this trigger, so sending a request starts no worker
    process. The request arguments (:data:`~crypto_ml.engine.request.SUBMIT_ARGUMENTS`) are the
    operator's, and become a request as on a worker
    (:meth:`~crypto_ml.engine.request.EngineRequest.build`); the engine task id is
    :func:`~crypto_ml.engine.client.engine_task_id_of` the task instance and try, as on a worker.
    A request the engine can never serve (:class:`~crypto_ml.engine.protocol.EngineInputError`)
    fails the task here (no retry helps); a broker that cannot be reached is a plain ``"error"``
    event, so the task resumes on a worker and fails there, with its retries.

    :param request_kind: ``"predict"`` or ``"train"``.
    :param closes: a list of closes, a dict with ``"closes"`` (and ``coin``/``as_of``, used when
        those are not given: the transform's output), their JSON text, or None.
    :param as_of: the day (rendered); empty: the run's market day
        (:func:`~crypto_ml.pipeline.catalog.run_market_day`).
    :param wait: after sending, wait for the result and end the task with it.

    The other parameters are :class:`~crypto_ml.operators.engine.EngineSubmitOperator`'s and
    :class:`EngineTaskTrigger`'s.
    """

    def __init__(
        self,
        *,
        request_kind: str = "predict",
        coin: str | None = None,
        as_of: str | None = None,
        model: str | None = None,
        horizon: int | str | None = None,
        closes: Any = None,
        history: str | None = None,
        model_params: dict[str, Any] | str | None = None,
        engine_conn_id: str = "crypto_ml_engine",
        wait: bool = False,
        poll_interval: float = 2.0,
        first_poll: float = 0.05,
        timeout: float = 600.0,
        started_at: float | None = None,
        max_errors: int = 5,
    ) -> None:
        super().__init__(
            engine_task_id="",
            engine_conn_id=engine_conn_id,
            poll_interval=poll_interval,
            first_poll=first_poll,
            timeout=timeout,
            started_at=started_at,
            max_errors=max_errors,
            end_task=True,
        )
        self.request_kind = request_kind
        self.coin = coin
        self.as_of = as_of
        self.model = model
        self.horizon = horizon
        self.closes = closes
        self.history = history
        self.model_params = model_params
        self.wait = wait

    arguments = (
        "request_kind",
        *SUBMIT_ARGUMENTS,
        "engine_conn_id",
        "wait",
        "poll_interval",
        "first_poll",
        "timeout",
        "started_at",
        "max_errors",
    )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "crypto_ml.triggers.engine.EngineSubmitTrigger", self._arguments()

    def request(self) -> EngineRequest:
        """The request, once the templates are rendered (JSON text decoded); an empty ``as_of`` is
        the run's market day (a Connection lookup: call it off the event loop)."""
        from crypto_ml.engine.request import EngineRequest
        from crypto_ml.pipeline.catalog import run_market_day

        ti = self.task_instance
        arguments = {name: decode_rendered(getattr(self, name)) for name in SUBMIT_ARGUMENTS}
        return EngineRequest.build(
            self.request_kind,
            **arguments,
            run_id=ti.run_id,
            default_as_of=lambda: run_market_day(ti.get_template_context()["dag_run"]),
        )

    def _refused(self, exc: Exception) -> TriggerEvent:
        self.log.error("refused before sending: %s", exc)
        return TaskFailedEvent()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from crypto_ml.engine.client import engine_task_id_of

        ti = self.task_instance
        engine_task_id = engine_task_id_of(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)
        try:
            request = await asyncio.to_thread(self.request)
        except ValueError as exc:  # a request no retry can cure (EngineInputError, text that is not JSON)
            yield self._refused(exc)
            return
        try:
            # Sending is a blocking kombu call: keep it off the triggerer's event loop.
            await asyncio.to_thread(self.hook.submit, request, task_id=engine_task_id)
        except Exception as exc:  # noqa: BLE001 - the broker: resume on a worker, retries apply
            self.log.warning("could not send to the engine: %s: %s", type(exc).__name__, exc)
            yield TriggerEvent(
                {
                    "engine_task_id": engine_task_id,
                    "status": "error",
                    "message": f"could not send to the engine: {type(exc).__name__}: {exc}",
                }
            )
            return
        self.log.info(
            "submitted %s for %s as of %s (model %s): engine task %s",
            request.task_name,
            request.coin,
            request.as_of,
            request.model,
            engine_task_id,
        )
        if not self.wait:
            yield TaskSuccessEvent(xcoms={"return_value": engine_task_id})
            return
        self.engine_task_id = engine_task_id
        if self.started_at is None:
            self.started_at = time.time()
        async for event in super().run():
            yield event

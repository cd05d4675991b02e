"""Operator: trigger many runs of a DAG from one task (the batched form of Airflow's
``TriggerDagRunOperator``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class TriggerDagRunsOperator(BaseOperator):
    """Trigger one run of ``trigger_dag_id`` per entry of ``runs``, from one task process.

    A mapped ``TriggerDagRunOperator`` starts one task process per run (measured: on the embedded
    default, 89 processes took 49 s of the daily run's 117 s while the coin runs competed for the
    same two cores). This task sends, for every run, the very request a ``TriggerDagRunOperator``
    task makes (the Task SDK's ``TriggerDagRun`` message, which its supervisor turns into the
    Execution API's ``POST /execution/dag-runs/{dag_id}/{run_id}``), so the runs are created exactly
    as that operator creates them: same run ids, conf and ``run_after``, each run visible, clearable
    and triggerable on its own. Unlike that operator's ``reset_dag_run``, an existing run is reset
    only when it has finished and has the conf asked (see below): Airflow's reset clears the run,
    killing its running tasks, and keeps its old conf.

    :param trigger_dag_id: the DAG to run.
    :param runs: the runs (templated): dicts with ``trigger_run_id`` and ``conf`` (the kwargs a
        mapped ``TriggerDagRunOperator`` takes), e.g. an upstream task's output.
    :param reset_dag_run: re-run a run that already exists (a re-run of the day) instead of
        failing on it, when it has finished: it is reset (cleared), and its tasks, idempotent,
        write nothing twice. A run still queued or running is never reset under its tasks: it is
        left running (said in the log) and its id returned, to be waited for like the others. An
        existing run whose conf is not the one asked is never reset either (a reset keeps the old
        conf): the task fails after triggering the others, naming the run and both confs. Only the
        first try resets: a retry keeps the runs its earlier try created.
    :param request_attempts: tries of one trigger request the api-server did not answer (busy:
        seen on the embedded SQLite default with every process at once), 2, 4, 8 s apart.
    :return: the run ids, in order.
    """

    template_fields: Sequence[str] = ("runs",)
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        runs: Any,
        reset_dag_run: bool = True,
        request_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_attempts = request_attempts
        self.trigger_dag_id = trigger_dag_id
        self.runs = runs
        self.reset_dag_run = reset_dag_run

    def execute(self, context: Context) -> list[str]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        runs = list(self.runs or [])
        bad = [r for r in runs if not (isinstance(r, dict) and r.get("trigger_run_id"))]
        if bad:
            raise AirflowException(f"every run needs a trigger_run_id; got {bad[:3]!r}")
        # A retry of this task keeps the runs its earlier try created (they may be running).
        reset = self.reset_dag_run and context["ti"].try_number <= 1
        run_after = datetime.now(UTC)
        triggered: list[str] = []
        outcomes: dict[str, int] = {}
        refused: list[str] = []
        for run in runs:
            outcome = self._trigger(
                run["trigger_run_id"],
                run.get("conf") or {},
                run_after,
                reset,
                done=f"{len(triggered)} of {len(runs)} triggered before it",
            )
            what, _, why = outcome.partition(": ")
            if what == "refused":
                refused.append(why)
            outcomes[what] = outcomes.get(what, 0) + 1
            triggered.append(run["trigger_run_id"])
        self.log.info(
            "triggered %d %s runs (%s)",
            len(triggered),
            self.trigger_dag_id,
            ", ".join(f"{n} {what}" for what, n in outcomes.items()) or "none",
        )
        if refused:
            raise AirflowFailException(
                f"{len(refused)} {self.trigger_dag_id} run(s) not triggered, the others were: "
                + "; ".join(refused)
            )
        return triggered

    def _send(self, message, run_id: str, *, done: str):
        """One request to the supervisor; an unanswered one (busy api-server, a timeout) is sent
        again up to ``request_attempts`` times. Returns ``(answer, answered_first_time)``."""
        import time

        from airflow.sdk.exceptions import AirflowException, AirflowRuntimeError
        from airflow.sdk.execution_time import task_runner

        for attempt in range(1, self.request_attempts + 1):
            try:
                return task_runner.SUPERVISOR_COMMS.send(message), attempt == 1
            except AirflowRuntimeError as exc:
                if attempt == self.request_attempts:
                    raise AirflowException(
                        f"could not trigger {self.trigger_dag_id} run {run_id} ({done}): {exc}"
                    ) from None
                self.log.warning(
                    "request for %s run %s not answered (%s); again in %d s",
                    self.trigger_dag_id,
                    run_id,
                    exc,
                    2**attempt,
                )
                time.sleep(2**attempt)
        raise AssertionError("unreachable")

    def _trigger(self, run_id: str, conf: dict, run_after: datetime, reset: bool, *, done: str) -> str:
        """Create the run; when it exists, re-run it if it has finished with the same conf, leave it
        running if it has not, refuse it if its conf differs. Returns what was done: ``created``,
        ``re-run``, ``left running``, ``kept`` (a retry's), or ``refused: <why>``."""
        from airflow.sdk.exceptions import AirflowException
        from airflow.sdk.execution_time.comms import ErrorResponse, GetDagRun, TriggerDagRun

        def fail(answer) -> AirflowException:
            return AirflowException(
                f"could not trigger {self.trigger_dag_id} run {run_id} ({done}): "
                f"{answer.error}: {answer.detail}"
            )

        answer, first = self._send(
            TriggerDagRun(
                dag_id=self.trigger_dag_id,
                run_id=run_id,
                conf=conf,
                logical_date=None,
                run_after=run_after,
                reset_dag_run=False,
            ),
            run_id,
            done=done,
        )
        if not isinstance(answer, ErrorResponse):
            self.log.info("triggered %s run %s", self.trigger_dag_id, run_id)
            return "created"
        from airflow.sdk.exceptions import ErrorType

        if answer.error != ErrorType.DAGRUN_ALREADY_EXISTS:
            raise fail(answer)
        existing, _ = self._send(GetDagRun(dag_id=self.trigger_dag_id, run_id=run_id), run_id, done=done)
        if isinstance(existing, ErrorResponse):
            raise fail(existing)
        state = str(getattr(existing.state, "value", existing.state))
        if (existing.conf or {}) != conf:
            return (
                f"refused: {run_id} exists ({state}) "
                f"with conf {json.dumps(existing.conf or {}, sort_keys=True)}, "
                f"not {json.dumps(conf, sort_keys=True)}; a reset would keep its conf, "
                "so it was left as it is "
                f"(trigger {self.trigger_dag_id} under another run id, or delete that run first)"
            )
        if not first or not reset:  # created by an unanswered attempt of ours, or this task's earlier try
            self.log.info("%s run %s exists (%s): kept", self.trigger_dag_id, run_id, state)
            return "kept"
        if state in ("queued", "running"):
            self.log.warning(
                "%s run %s is still %s with this conf: not reset (its tasks go on), waited for",
                self.trigger_dag_id,
                run_id,
                state,
            )
            return "left running"
        answer, _ = self._send(
            TriggerDagRun(
                dag_id=self.trigger_dag_id,
                run_id=run_id,
                conf=conf,
                logical_date=None,
                run_after=run_after,
                reset_dag_run=True,
            ),
            run_id,
            done=done,
        )
        if isinstance(answer, ErrorResponse):
            raise fail(answer)
        self.log.info("re-ran %s run %s (it had finished: %s)", self.trigger_dag_id, run_id, state)
        return "re-run"

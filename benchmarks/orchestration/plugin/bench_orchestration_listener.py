"""Benchmark-only Airflow listener: one JSON line per task-process start and exit.

Copied by ``benchmarks/bench_orchestration.py`` into the plugins folder of a benchmark run only
(never into the project's ``plugins/``). ``on_task_instance_running`` runs inside the task
process each time one starts to run the task (a first start, a resume after deferral, a retry),
after Airflow's start-up (fork, DAG parse, execution-API handshake) and just before
``execute``. It records the process's fork time (``/proc/self/stat``), the time it reached the
task, and registers an exit hook that records the exit time and the process's own CPU
(``getrusage(RUSAGE_SELF)``; a forked child starts from zero). Lines go to the file named by
``BENCH_ORCH_EVENTS`` (appended with ``O_APPEND``: one ``write`` per line, so processes do not
interleave). Without that variable the listener does nothing.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
import time

from airflow.plugins_manager import AirflowPlugin

try:  # Airflow 3
    from airflow.listeners import hookimpl
except ImportError:  # pragma: no cover
    from airflow.sdk._shared.listeners import hookimpl  # type: ignore

_PATH = os.environ.get("BENCH_ORCH_EVENTS")
_CLK = os.sysconf("SC_CLK_TCK")
_state: dict = {}


def _write(record: dict) -> None:
    if not _PATH:
        return
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _fork_time() -> float | None:
    """This process's start time (epoch s) from /proc (field 22, clock ticks after boot)."""
    try:
        with open("/proc/self/stat") as fh:
            after = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return btime + int(after[19]) / _CLK
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _key(ti) -> dict:
    return {
        "dag": getattr(ti, "dag_id", None),
        "task": getattr(ti, "task_id", None),
        "run": getattr(ti, "run_id", None),
        "map": getattr(ti, "map_index", -1),
        "try": getattr(ti, "try_number", None),
    }


def _on_exit() -> None:
    start = _state.get("start")
    if start is None:
        return
    _write(
        {
            "ev": "exit",
            "pid": os.getpid(),
            **start["key"],
            "t": time.time(),
            "cpu": _cpu(),
            "outcome": _state.get("outcome"),
        }
    )


@hookimpl
def on_task_instance_running(previous_state, task_instance):
    if not _PATH:
        return
    key = _key(task_instance)
    now = time.time()
    _state["start"] = {"key": key}
    _write(
        {
            "ev": "running",
            "pid": os.getpid(),
            **key,
            "fork": _fork_time(),
            "t": now,
            "cpu": _cpu(),
            "previous_state": str(previous_state),
        }
    )
    if not _state.get("hooked"):
        atexit.register(_on_exit)
        _state["hooked"] = True


@hookimpl
def on_task_instance_success(previous_state, task_instance):
    _state["outcome"] = "success"
    if _PATH and _state.get("start"):
        _write(
            {"ev": "success", "pid": os.getpid(), **_state["start"]["key"], "t": time.time(), "cpu": _cpu()}
        )


@hookimpl
def on_task_instance_failed(previous_state, task_instance, error):
    _state["outcome"] = "failed"
    if _PATH and _state.get("start"):
        _write(
            {"ev": "failed", "pid": os.getpid(), **_state["start"]["key"], "t": time.time(), "cpu": _cpu()}
        )


@hookimpl
def on_task_instance_skipped(previous_state, task_instance):
    _state["outcome"] = "skipped"
    if _PATH and _state.get("start"):
        _write(
            {"ev": "skipped", "pid": os.getpid(), **_state["start"]["key"], "t": time.time(), "cpu": _cpu()}
        )


class BenchOrchestrationListener(AirflowPlugin):
    name = "bench_orchestration_listener"
    listeners = [sys.modules[__name__]]

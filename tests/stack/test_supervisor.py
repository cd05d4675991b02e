"""The stack's supervisor on real processes (no Airflow needed): a component that exits is started
again with exponential backoff instead of taking the stack down; one that keeps dying right away
stops the stack loudly; a component stopped on purpose stays stopped."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import pytest

from crypto_ml.stack import supervisor
from crypto_ml.stack.supervisor import ComponentFailed, Supervisor


@dataclass
class TinyStack(Supervisor):
    """Two components: one that runs until killed, one that exits at once when told to."""

    def commands(self) -> dict[str, list[str]]:
        flaky = (
            "import os, sys, time; sys.exit(3) if os.path.exists(os.environ['DIE_FLAG']) else time.sleep(600)"
        )
        return {
            "steady": [sys.executable, "-c", "import time; time.sleep(600)"],
            "flaky": [sys.executable, "-c", flaky],
        }


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_component_is_restarted_and_the_stack_stays_up(tmp_path, monkeypatch):
    monkeypatch.setenv("DIE_FLAG", str(tmp_path / "die"))
    with TinyStack(log_dir=tmp_path / "logs") as stack:
        first = stack.procs["steady"].pid
        stack.crash("steady")  # kill -9 of the whole group
        _wait(lambda: stack.procs["steady"].pid != first and stack.procs["steady"].poll() is None)
        stack.check_alive()  # the stack did not give up
        [event] = stack.restarts
        assert event["name"] == "steady" and event["code"] == -9 and event["delay"] == 1.0
        assert 0.9 <= event["restarted"] - event["exited"] < 5
        assert "steady exited with code -9" in (tmp_path / "logs" / "supervisor.log").read_text()
        # Stopped on purpose: not restarted.
        stack.kill("flaky")
        time.sleep(1.5)
        assert "flaky" not in stack.procs and [e["name"] for e in stack.restarts] == ["steady"]


def test_backoff_doubles_and_a_crash_loop_stops_the_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("DIE_FLAG", str(tmp_path / "die"))
    monkeypatch.setattr(supervisor, "RESTART_BACKOFF_FIRST", 0.2)
    monkeypatch.setattr(supervisor, "MAX_QUICK_RESTARTS", 4)
    with TinyStack(log_dir=tmp_path / "logs") as stack:
        (tmp_path / "die").touch()  # from now on flaky exits with 3 at once
        stack.crash("flaky")
        _wait(lambda: len([e for e in stack.restarts if e["name"] == "flaky"]) >= 4)
        delays = [e["delay"] for e in stack.restarts if e["name"] == "flaky"]
        assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6])
        with pytest.raises(ComponentFailed, match="flaky exited 4 times in a row"):
            _wait(lambda: stack.check_alive() or False, timeout=15)
        assert stack.procs["steady"].poll() is None  # the others were left alone until the stop
    assert not stack.procs

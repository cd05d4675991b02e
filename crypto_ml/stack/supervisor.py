"""Supervised process groups: the part of a stack that is not Airflow-specific.

Every component runs in its own process group and is stopped as a group, so nothing is left
running. The stack is supervised like production (compose's ``restart: unless-stopped``,
Kubernetes): a component that exits (its database was lost, it crashed, it was killed) is started
again with exponential backoff (1 s, 2 s, 4 s ... at most 30 s; the count resets once it has stayed
up a minute) instead of taking the stack down. Only a component that keeps dying
(:data:`MAX_QUICK_RESTARTS` times in a row, each time within a minute) stops the stack, with its
log (:class:`ComponentFailed`). Every restart is logged to ``<log_dir>/supervisor.log`` and kept in
:attr:`Supervisor.restarts`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Supervision: first and largest restart delay (s), the uptime after which a component counts as
#: stable again, and how many quick restarts in a row give up (then the stack stops, loudly).
RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
MAX_QUICK_RESTARTS = 12


class ComponentFailed(RuntimeError):
    """A supervised component kept exiting right after each restart: the supervisor gave up."""


def find_bin(name: str) -> str:
    """The executable ``name`` next to this Python (the venv's), else on ``PATH``."""
    path = Path(sys.executable).with_name(name)
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name!r} is not installed next to {sys.executable} nor on PATH")
    return found


@dataclass
class Supervisor:
    """Long-running processes, started, supervised and stopped together; a context manager.

    Subclasses say what runs: :meth:`env` (the shared environment), :meth:`prepare` (one-off
    set-up), :meth:`commands` (name -> command line), :meth:`process_env` (one process's
    environment) and :meth:`wait_healthy` (until the processes serve).
    """

    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _started_at: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _overrides: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)

    def env(self) -> dict[str, str]:
        """The environment every process shares."""
        return dict(os.environ)

    def prepare(self, env: dict[str, str]) -> None:
        """One-off set-up before the long-running processes start."""

    def commands(self) -> dict[str, list[str]]:
        """Process name -> command line of every long-running process."""
        raise NotImplementedError

    def process_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """The environment of process ``name`` (the shared one, unless overridden)."""
        return env

    def wait_healthy(self, timeout: float = 180) -> None:
        """Until the started processes serve (nothing to wait for here)."""
        self.check_alive()

    def start(self) -> None:
        if self.log_dir is None:
            raise ValueError(f"{type(self).__name__} needs a log_dir")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        self.prepare(env)
        self._supervision = _Supervision()
        for name, cmd in self.commands().items():
            self.spawn(name, cmd, self.process_env(name, env))
        self._supervisor = threading.Thread(target=self._supervise, name="crypto-ml-supervisor", daemon=True)
        self._supervisor.start()
        self.wait_healthy()

    def spawn(
        self, name: str, cmd: list[str], env: dict[str, str], *, append: bool = False
    ) -> subprocess.Popen:
        """Start one process in its own process group (stopped as a group), logging to a file."""
        with open(self.log_dir / f"{name}.log", "a" if append else "w") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        with self._lock:
            self.procs[name] = proc
            self._started_at[name] = time.monotonic()
        return proc

    def restart(self, name: str, settings: dict[str, str] | None = None) -> subprocess.Popen:
        """Stop process ``name`` gracefully (SIGTERM, its group) and start it again, with
        ``settings`` added to its environment (kept for the supervisor's later restarts)."""
        self.kill(name, signal.SIGTERM)
        self._overrides.setdefault(name, {}).update(settings or {})
        return self.spawn(name, self.commands()[name], self._env_of(name))

    def _env_of(self, name: str) -> dict[str, str]:
        env = self.process_env(name, self.env())
        env.update(self._overrides.get(name, {}))
        return env

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop ``name`` for good: send ``sig`` to its whole group and stop supervising it."""
        with self._lock:
            proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a graceful stop that did not finish
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def crash(self, name: str, sig: int = signal.SIGKILL) -> int:
        """A fault: ``kill -9`` the whole process group of ``name`` and leave it to the
        supervisor (which starts it again). Returns the killed pid."""
        with self._lock:
            proc = self.procs[name]
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        return proc.pid

    # -- supervision ------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} [supervisor] {message}"
        with open(self.log_dir / "supervisor.log", "a") as fh:
            fh.write(line + "\n")
        print(f"[stack] {message}", flush=True)

    def _supervise(self) -> None:
        sup = self._supervision
        while not sup.stopping.wait(0.5):
            with self._lock:
                exited = [(n, p) for n, p in self.procs.items() if p.poll() is not None and n not in sup.due]
            now = time.monotonic()
            for name, proc in exited:
                uptime = now - self._started_at.get(name, now)
                quick = sup.quick.get(name, 0) + 1 if uptime < STABLE_AFTER else 1
                sup.quick[name] = quick
                if quick > MAX_QUICK_RESTARTS:
                    sup.failed[name] = (
                        f"{name} exited {quick - 1} times in a row within {STABLE_AFTER:.0f} s of each start"
                    )
                    self._say(f"{sup.failed[name]}; giving up (see {self.log_dir / (name + '.log')})")
                    continue
                delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_FIRST * 2 ** (quick - 1))
                sup.due[name] = now + delay
                sup.events.append(
                    {"name": name, "code": proc.returncode, "exited": time.time(), "delay": delay}
                )
                self._say(
                    f"{name} exited with code {proc.returncode} after {uptime:.0f} s; "
                    f"restarting in {delay:.0f} s (restart {quick} in a row)"
                )
            for name, when in list(sup.due.items()):
                if time.monotonic() >= when and not sup.stopping.is_set():
                    del sup.due[name]
                    with self._lock:
                        if name not in self.procs:  # stopped on purpose meanwhile
                            continue
                    try:
                        with open(self.log_dir / f"{name}.log", "a") as fh:
                            fh.write(f"\n--- supervisor: restarted at {time.strftime('%H:%M:%S')} ---\n")
                        self.spawn(name, self.commands()[name], self._env_of(name), append=True)
                        for event in reversed(sup.events):
                            if event["name"] == name and "restarted" not in event:
                                event["restarted"] = time.time()
                                break
                    except Exception as exc:  # noqa: BLE001 - retried with the next backoff
                        self._say(f"{name}: restart failed: {exc}")
                        sup.due[name] = time.monotonic() + RESTART_BACKOFF_MAX

    @property
    def restarts(self) -> list[dict]:
        """Every restart so far: ``{name, code, exited, delay, restarted}`` (epoch seconds)."""
        sup = getattr(self, "_supervision", None)
        return list(sup.events) if sup else []

    def run_until_interrupted(self) -> None:
        """Keep the stack up until Ctrl-C or SIGTERM (or until one of its processes dies)."""
        try:
            while True:
                self.check_alive()
                time.sleep(5)
        except KeyboardInterrupt:
            pass

    def check_alive(self) -> None:
        """Raise :class:`ComponentFailed` when the supervisor gave up on a component."""
        sup = getattr(self, "_supervision", None)
        if sup is None or not sup.failed:
            return
        name, why = next(iter(sup.failed.items()))
        tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
        raise ComponentFailed(f"{why}:\n{tail}")

    def stop(self) -> None:
        sup = getattr(self, "_supervision", None)
        if sup is not None:
            sup.stopping.set()
            thread = getattr(self, "_supervisor", None)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=10)
        with self._lock:
            procs = list(self.procs.values())
            self.procs.clear()
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 30
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:  # whatever ignored SIGTERM, and its children
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self):
        # A SIGTERM (kill, CI timeout) unwinds like Ctrl-C, so __exit__ stops every process group.
        def _terminate(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        self._previous_sigterm = signal.signal(signal.SIGTERM, _terminate)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)


@dataclass
class _Supervision:
    """The supervisor's state: restart times due, quick restarts in a row, given-up components."""

    stopping: threading.Event = field(default_factory=threading.Event)
    due: dict[str, float] = field(default_factory=dict)
    quick: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)

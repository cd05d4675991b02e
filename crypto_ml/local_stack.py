"""Run the whole pipeline on one machine with the embedded default: no external server.

Airflow (SQLite metadata DB, LocalExecutor: api-server, scheduler, dag-processor, triggerer) and
one prediction-engine worker (``celery -A crypto_ml worker`` on the embedded SQLite broker), each
started in its own process group and stopped as a group, so nothing is left running.

The stack is supervised like production (compose's ``restart: unless-stopped``, Kubernetes): a
component that exits (its database was lost, it crashed, it was killed) is started again with
exponential backoff (1 s, 2 s, 4 s ... at most 30 s; the count resets once it has stayed up a
minute) instead of taking the stack down. Only a component that keeps dying
(:data:`MAX_QUICK_RESTARTS` times in a row, each time within a minute) stops the stack, with its
log. Every restart is logged to ``<log_dir>/supervisor.log`` and kept in :attr:`LocalStack.restarts`.

This is the README's main job (``crypto-ml pipeline``); production runs the same DAGs on
CeleryExecutor workers (``airflow.cfg``; on one machine: ``crypto_ml.celery_stack``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from crypto_ml.config import airflow_home, home_dir, project_env

MASTER = "crypto_ml_master"
COIN = "crypto_ml_coin"

#: Connect arguments of Airflow's SQLite metadata DB in the local stack (through
#: ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS``): wait up to a minute for SQLite's write lock
#: instead of failing with "database is locked" after the default 5 s when many task processes
#: write at once (seen here: the dag-processor died of it during a run over every coin).
SQLITE_CONNECT_ARGS = {"timeout": 60}
#: Task processes at once. SQLite takes one writer at a time and this box has 2 cores: more
#: processes only wait for each other (and for the lock).
LOCAL_PARALLELISM = 8
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
#: Supervision: first and largest restart delay (s), the uptime after which a component counts as
#: stable again, and how many quick restarts in a row give up (then the stack stops, loudly).
RESTART_BACKOFF_FIRST = 1.0
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
MAX_QUICK_RESTARTS = 12


class ComponentFailed(RuntimeError):
    """A supervised component kept exiting right after each restart: the supervisor gave up."""


def _bin(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name!r} is not installed next to {sys.executable} nor on PATH")
    return found


def local_secrets(home: Path) -> dict[str, str]:
    """Secrets every Airflow process of this local stack must share (JWT, API, Fernet), generated
    once per Airflow home into ``<home>/local-secrets.json`` (mode 0600, never in the repo)."""
    path = home / "local-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    secrets = {
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(64)).decode(),
        "AIRFLOW__API__SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(secrets, fh)
    return secrets


@dataclass
class LocalStack:
    """The processes of the local stack; use as a context manager."""

    port: int = 8080
    engine_concurrency: int = 2
    log_dir: Path = field(default_factory=lambda: airflow_home() / "logs" / "local-stack")
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _started_at: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _overrides: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)

    def env(self) -> dict[str, str]:
        home = airflow_home()
        env = dict(os.environ)
        env.update(local_secrets(home))
        env.update(project_env())
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(LOCAL_PARALLELISM),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "crypto_ml.local_stack.SQLITE_CONNECT_ARGS",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                # Local first try only: the development auth manager, everyone admin, on 127.0.0.1
                # (airflow.cfg carries production's FAB auth manager and CeleryExecutor).
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "CRYPTO_ML_HOME": str(home_dir()),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def prepare(self, env: dict[str, str]) -> None:
        """One-off set-up before the long-running processes start (the metadata DB schema)."""
        subprocess.run([_bin("airflow"), "db", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def commands(self) -> dict[str, list[str]]:
        """Process name -> command line of every long-running process of the stack."""
        return {
            "engine-worker": [_bin("celery"), "-A", "crypto_ml", "worker", "-Q", "predict,train",
                              "-c", str(self.engine_concurrency), "-l", "INFO",
                              "--without-gossip", "--without-mingle", "-n", "engine-local@%h"],
            "api-server": [_bin("airflow"), "api-server", "--port", str(self.port)],
            "scheduler": [_bin("airflow"), "scheduler"],
            "dag-processor": [_bin("airflow"), "dag-processor"],
            "triggerer": [_bin("airflow"), "triggerer"],
        }

    def process_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """The environment of process ``name`` (the stack's shared one, unless overridden)."""
        return env

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        self.prepare(env)
        self._supervision = _Supervision()
        for name, cmd in self.commands().items():
            self.spawn(name, cmd, self.process_env(name, env))
        self._supervisor = threading.Thread(target=self._supervise, name="crypto-ml-supervisor", daemon=True)
        self._supervisor.start()
        self.wait_healthy()

    def spawn(self, name: str, cmd: list[str], env: dict[str, str], *, append: bool = False) -> subprocess.Popen:
        """Start one process in its own process group (stopped as a group), logging to a file."""
        with open(self.log_dir / f"{name}.log", "a" if append else "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
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
                    sup.failed[name] = f"{name} exited {quick - 1} times in a row within {STABLE_AFTER:.0f} s of each start"
                    self._say(f"{sup.failed[name]}; giving up (see {self.log_dir / (name + '.log')})")
                    continue
                delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_FIRST * 2 ** (quick - 1))
                sup.due[name] = now + delay
                sup.events.append({"name": name, "code": proc.returncode, "exited": time.time(), "delay": delay})
                self._say(f"{name} exited with code {proc.returncode} after {uptime:.0f} s; "
                          f"restarting in {delay:.0f} s (restart {quick} in a row)")
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

    def wait_healthy(self, timeout: float = 180) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    health = json.load(resp)
                if health.get("metadatabase", {}).get("status") == "healthy":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the api-server did not answer {url} within {timeout:.0f} s; "
                                   f"see {self.log_dir}/api-server.log")
            time.sleep(1)

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

    def __enter__(self) -> LocalStack:
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


def _orm():
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    return DagModel, DagRun, create_session


def wait_for_dags(dag_ids: list[str], stack: LocalStack, timeout: float = 180) -> None:
    """Until the dag-processor has parsed ``dag_ids`` (a DagModel row exists for each)."""
    DagModel, _, create_session = _orm()
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        with create_session() as session:
            found = {d.dag_id for d in session.query(DagModel).filter(DagModel.dag_id.in_(dag_ids))}
        if found == set(dag_ids):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"DAGs not parsed within {timeout:.0f} s: {sorted(set(dag_ids) - found)}")
        time.sleep(1)


def run_pipeline(*, port: int = 8080, keep_running: bool = False, timeout: float = 1800,
                 out=sys.stdout) -> int:
    """Start the local stack, run the master DAG once, print the summary and a plot; stop."""
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    stack = LocalStack(port=port)
    say(f"[pipeline] starting Airflow (LocalExecutor, SQLite in {airflow_home()}) and an engine worker;"
        f" logs in {stack.log_dir}")
    started = time.monotonic()
    with stack:
        say(f"[pipeline] Airflow UI: http://127.0.0.1:{port}  (up in {time.monotonic() - started:.0f} s)")
        env = stack.env()
        os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW")})
        wait_for_dags([MASTER, COIN], stack)
        for dag_id in (COIN, MASTER):
            subprocess.run([_bin("airflow"), "dags", "unpause", dag_id], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_id = master_run(env, stack, say)
        code = _follow(run_id, stack, say, timeout)
        _summarize(run_id, say)
        if keep_running:
            say(f"[pipeline] stack left running: http://127.0.0.1:{port}  (Ctrl-C stops it)")
            stack.run_until_interrupted()
        say("[pipeline] stopping Airflow and the engine worker")
    return code


def master_run(env, stack, say) -> str:
    """The run the scheduler creates on unpause (today's interval), else a manual trigger."""
    _, DagRun, create_session = _orm()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with create_session() as session:
            runs = session.query(DagRun).filter(DagRun.dag_id == MASTER).order_by(DagRun.id.desc()).all()
        active = [r for r in runs if r.state in ("queued", "running")]
        if active:
            say(f"[pipeline] the scheduler started {MASTER} run {active[0].run_id}")
            return active[0].run_id
        if runs:
            break
        time.sleep(1)
    say(f"[pipeline] airflow dags trigger {MASTER}")
    out = subprocess.run([_bin("airflow"), "dags", "trigger", MASTER, "-o", "json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return cli_json(out)[0]["dag_run_id"]


def cli_json(out: str):
    """The JSON document of an ``airflow ... -o json`` output (log lines may come before it)."""
    for line in out.splitlines():
        if line.startswith(("[{", "{", "[]")):
            return json.loads(line)
    raise ValueError(f"no JSON in the Airflow CLI output:\n{out[-2000:]}")


def _follow(run_id: str, stack: LocalStack, say, timeout: float) -> int:
    _, DagRun, create_session = _orm()
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        stack.check_alive()
        with create_session() as session:
            master = session.query(DagRun).filter(DagRun.dag_id == MASTER, DagRun.run_id == run_id).one()
            day = None
            ti = next((t for t in master.get_task_instances(session=session) if t.task_id == "poll_new_data"), None)
            if ti is not None and ti.state == "success":
                from airflow.models.xcom import XComModel

                value = session.query(XComModel).filter_by(
                    dag_id=MASTER, run_id=run_id, task_id="poll_new_data", key="return_value").first()
                if value is not None:
                    polled = value.value if isinstance(value.value, dict) else json.loads(value.value)
                    day = polled.get("history_day")
            coin_runs = []
            if day:
                coin_runs = session.query(DagRun).filter(
                    DagRun.dag_id == COIN, DagRun.run_id.like(f"%__{day}")).all()
            states = [r.state for r in coin_runs]
            line = (f"[pipeline] {MASTER}: {master.state}"
                    + (f"; history day {day}: coin pipelines {states.count('success')} succeeded, "
                       f"{states.count('failed')} failed, {states.count('running') + states.count('queued')} "
                       f"running or queued, of {len(states)}" if day else "; polling new data"))
            if master.state in ("success", "failed"):
                say(line)
                return 0 if master.state == "success" else 1
        if line != last:
            say(line)
            last = line
        if time.monotonic() > deadline:
            say(f"[pipeline] gave up after {timeout:.0f} s")
            return 1
        time.sleep(3)


def _summarize(run_id: str, say) -> None:
    _, DagRun, create_session = _orm()
    from airflow.models.xcom import XComModel

    with create_session() as session:
        value = session.query(XComModel).filter_by(
            dag_id=MASTER, run_id=run_id, task_id="poll_new_data", key="return_value").first()
    if value is None:
        say("[pipeline] no data was polled; nothing to summarize")
        return
    polled = value.value if isinstance(value.value, dict) else json.loads(value.value)
    print_day_report(polled, say)


def print_day_report(polled: dict, say, url: str | None = None, coins: list[str] | None = None) -> None:
    """The day's forecasts and decisions from the project DB (``url``; default: the configured
    one), the coins without a forecast (of ``coins``, default: all polled), and the day's plot."""
    from crypto_ml.reporting import day_table, plot_day

    day = polled["history_day"]
    table = day_table(day, url=url)
    market = polled.get("market", "replay of the bundled 2013-2017 history")
    say(f"\nForecasts as of {day} ({market}; {len(table)} coins):\n")
    say(table.to_string(index=False) if len(table) else "(none)")
    missing = sorted(set(coins or polled["coins"]) - set(table["coin"]))
    if missing:
        say(f"\n{len(missing)} coins have no forecast (skipped: too little history, or failed; "
            f"see crypto_ml_coin in the UI): {', '.join(missing)}")
    path = plot_day(day, home_dir() / "reports" / f"{day}.png", url=url)
    trades = int((table["decision"] != "stored").sum()) if len(table) else 0
    say(f"\n{len(table)} forecasts stored, {trades} trade requests (paper broker). Plot: {path}")

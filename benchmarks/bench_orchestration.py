"""Orchestration cost of the daily run, measured from outside: old vs new pipeline, no-op floor,
LocalExecutor and CeleryExecutor stacks, and the scale curve (issue 11).

    python benchmarks/bench_orchestration.py compare --coins 89 --executors local,celery
    python benchmarks/bench_orchestration.py scale --coins 100,300,1000 --celery-coins 300 \\
        --celery-workers 1,2
    # a smoke run, 5 synthetic coins:
    python benchmarks/bench_orchestration.py compare --quick --executors local
    # after an interrupted run:
    python benchmarks/bench_orchestration.py report /tmp/bench-orch-<time> --out X.md
    # a warm day, 3 pairs:
    python benchmarks/bench_orchestration.py compare --executors local --days 2 --repeat 3

``--days N``: every command runs the master DAG on N consecutive days on one stack
(``orchestration/days.py``) and the figures are the last day's: a warm daily run, after the stack
paid its one-time costs, as on a production stack that runs every day; the first day is reported
next to it. ``--repeat N``: every (real, floor) pair runs N times, the versions interleaved, and
the report gives the medians and the spread of the pairs' ratios.

Each version of the tree is run through its own user-facing commands, never imported here:

- ``old``: commit 7fc3976 in a git worktree (``--old-tree``, default /work/bench_old; created with
  ``git worktree add --detach`` when missing), ``new``: this working tree (``--new-tree``). Both run
  on this checkout's ``.venv`` interpreter with ``PYTHONPATH``/``CRYPTO_ML_ROOT``/``AIRFLOW_CONFIG``
  pointing at their tree (the same Airflow, Celery and libraries: only the tree differs); the
  harness checks that ``crypto_ml`` resolves into the tree before it runs anything;
- the embedded default: ``crypto-ml pipeline`` (what ``bash scripts/main.sh`` runs): the stack
  starts, the scheduler runs the master's daily interval (yesterday UTC), the command follows it,
  prints the day and stops everything;
- the Celery stack: ``crypto-ml stack run --date <yesterday> --name <fresh>`` (secrets from the
  version's ``crypto-ml stack secrets``), with fresh PostgreSQL databases and Redis key prefix per
  run, dropped afterwards (the machine's servers are never stopped).

Every command runs in its own run directory (never in a checkout: ``python -m``/``-c`` would
put the current directory's ``crypto_ml`` first on ``sys.path``).

The replay anchors (``CRYPTO_ML_REPLAY_ANCHOR_REAL/HISTORY``) map the run's logical date onto
``--history-day`` (2017-06-25: 89 coins), so every run predicts the same day. Any other
``--coins N`` (``--quick``: 5) uses a synthetic CSV market of N coins, as the scale runs do
(``crypto-ml pipeline`` takes no coin list, and both executors must see the same universe).

Each command runs under ``benchmarks/orchestration/measure.py`` (a child subreaper sampling the
process tree) with a benchmark-only Airflow listener plugin in a run-local plugins folder (the
version's own plugins copied next to it). Afterwards the figures come from the metadata DB, the
listener's events and the samples (``benchmarks/orchestration/analyze.py``). The no-op floor of
a version's shape is then generated from that version's DagBag (``floor_spec.py``) and the real
run's measured starts per task (``floor_dags.py``), and run through the same command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORCH = HERE / "orchestration"
sys.path.insert(0, str(ORCH))

import analyze  # noqa: E402

MASTER, COIN = "crypto_ml_master", "crypto_ml_coin"
OLD_COMMIT = "7fc3976"
PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git_label(tree: Path) -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(tree), *a], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "dags", "crypto_ml", "plugins")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


# -- versions --------------------------------------------------------------------------------------
class Version:
    """A tree of the project to run, with environment settings of its own (``env``: a lever
    switched off, say ``CRYPTO_ML_PRELOAD=0``)."""

    def __init__(self, name: str, tree: Path, env: dict[str, str] | None = None):
        self.name, self.tree, self.extra_env = name, tree, dict(env or {})
        self.venv_bin = Path(sys.executable).parent
        self.label = git_label(tree) + "".join(f" {k}={v}" for k, v in self.extra_env.items())

    def env(self, run_dir: Path, *, dags: Path | None = None, extra: dict | None = None) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "CRYPTO_ML", "BENCH_ORCH", "PYTHONPATH"))
        }
        home = run_dir / "airflow"
        env.update(
            {
                "PATH": f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(self.tree),
                "CRYPTO_ML_ROOT": str(self.tree),
                "AIRFLOW_CONFIG": str(self.tree / "airflow.cfg"),
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(run_dir / "plugins"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags or self.tree / "dags"),
                "BENCH_ORCH_EVENTS": str(run_dir / "events.jsonl"),
            }
        )
        env.update(extra or {})
        env.update(self.extra_env)
        return env

    def check(self, work: Path) -> None:
        probe = work / f"probe-{self.name}"
        probe.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [str(self.venv_bin / "python"), "-c", "import crypto_ml; print(crypto_ml.__file__)"],
            env=self.env(probe),
            capture_output=True,
            text=True,
            cwd=probe,
        )
        where = Path(out.stdout.strip() or "?").resolve()
        if not str(where).startswith(str(self.tree.resolve()) + "/"):
            raise SystemExit(
                f"{self.name}: crypto_ml resolves to {where}, not into {self.tree} "
                f"(PYTHONPATH must win over the editable install): {out.stderr[-500:]}"
            )


def ensure_tree(path: Path, rev: str) -> None:
    """A git worktree of ``rev`` at ``path`` (created when missing; refused when at another commit)."""
    want = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], capture_output=True, text=True
    ).stdout.strip()
    if not want:
        raise SystemExit(f"{rev}: not a commit of {ROOT}")
    if (path / "dags").is_dir():
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout
        if head.strip() != want:
            raise SystemExit(f"{path} is at {head.strip()[:10]}, not {rev}: remove it or pass another path")
        return
    say(f"git worktree add --detach {path} {rev}")
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)


def parse_versions(spec: str, *, old_tree: Path, new_tree: Path) -> list[Version]:
    """``--versions``: comma-separated ``[NAME=]BASE[+VAR=VALUE...]``. BASE is ``old`` (the commit
    before issue 11, at ``old_tree``), ``new`` (``new_tree``, the working tree) or any commit (a
    worktree at /work/bench_<commit>); each ``+VAR=VALUE`` is set in every process of that
    version's runs (a NAME is then required). E.g. ``old,918d640,new,nopreload=new+CRYPTO_ML_PRELOAD=0``."""
    versions = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        head, *settings = item.split("+")
        name, _, base = head.rpartition("=")
        env = dict(x.split("=", 1) for x in settings if "=" in x)
        if len(env) != len(settings):
            raise SystemExit(f"--versions {item!r}: every +setting is VAR=VALUE")
        if env and not name:
            raise SystemExit(f"--versions {item!r}: name a version with settings (NAME={item})")
        if base == "old":
            ensure_tree(old_tree, OLD_COMMIT)
            tree = old_tree
        elif base == "new":
            tree = new_tree
        else:
            tree = Path(f"/work/bench_{base}")
            ensure_tree(tree, base)
        versions.append(Version(name or base, tree, env))
    if len({v.name for v in versions}) != len(versions):
        raise SystemExit(f"--versions {spec!r}: names repeat")
    return versions


# -- markets ---------------------------------------------------------------------------------------
def synthetic_market(folder: Path, n: int, day: dt.date, history_day: dt.date, days: int = 1) -> Path:
    """A CSV market of ``n`` synthetic coins (block-bootstrapped from the bundled real series,
    ``SyntheticSource``), each with a price on ``day``: the real calendar shifted so that
    ``history_day`` falls on ``day``. ``market/`` holds every row up to ``day``; ``history/``
    the rows before it (pre-loaded so the timed run stores one new day, as a daily run does), or
    before the first of ``days`` days ending on ``day``."""
    market, history = folder / "market", folder / "history"
    if (market / "prices.csv").exists():
        return folder
    import pandas as pd

    from crypto_ml.sources.synthetic import SyntheticSource  # the library's documented source

    want, extra = n, max(20, n // 3)
    while True:
        frame = SyntheticSource(n=want + extra, include_base=False, seed=11).read(as_of=history_day)
        frame["date"] = pd.to_datetime(frame["date"])
        have = frame.loc[frame["date"] == pd.Timestamp(history_day), "coin"].unique()
        if len(have) >= n:
            break
        extra *= 2
    keep = sorted(have)[:n]
    frame = frame[frame["coin"].isin(keep)].copy()
    frame["date"] = frame["date"] + pd.Timedelta(days=(day - history_day).days)
    frame = frame[frame["date"] <= pd.Timestamp(day)]
    cols = ["coin", "name", "date", "open", "high", "low", "close", "volume", "market_cap"]
    frame = frame[cols].sort_values(["coin", "date"])
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    market.mkdir(parents=True)
    history.mkdir(parents=True)
    frame.to_csv(market / "prices.csv", index=False, float_format="%.8g")
    first = day - dt.timedelta(days=days - 1)
    frame[frame["date"] < first.isoformat()].to_csv(history / "prices.csv", index=False, float_format="%.8g")
    say(f"synthetic market: {n} coins, {len(frame)} rows up to {day} in {market}")
    return folder


# -- one run ---------------------------------------------------------------------------------------
class Run:
    """One command (real pipeline or floor) of one version on one executor, measured."""

    def __init__(
        self,
        *,
        version: Version,
        executor: str,
        variant: str,
        work: Path,
        logical: dt.date,
        history_day: dt.date,
        market: Path | None,
        workers: int = 1,
        timeout: float = 3600,
        floor_of: dict | None = None,
        tag: str = "",
        days: int = 1,
    ):
        self.version, self.executor, self.variant = version, executor, variant
        self.workers, self.timeout, self.floor_of, self.days = workers, timeout, floor_of, days
        self.logical, self.history_day, self.market = logical, history_day, market
        self.name = (
            f"{version.name}-{executor}{workers if executor == 'celery' else ''}-{variant}{tag}"
            f"{f'-day{days}' if days > 1 else ''}"
        )
        self.dir = work / self.name
        self.dir.mkdir(parents=True)
        self.db_name = f"bench_orch_{os.getpid()}_{abs(hash(self.name)) % 10**6}"

    # The settings both executors share.
    def extra(self) -> dict:
        extra = {
            "CRYPTO_ML_REPLAY_ANCHOR_REAL": self.logical.isoformat(),
            "CRYPTO_ML_REPLAY_ANCHOR_HISTORY": self.history_day.isoformat(),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
        if self.market is not None:
            extra["AIRFLOW_CONN_CRYPTO_ML_MARKET"] = f"crypto-ml-market://csv?path={self.market / 'market'}"
        return extra

    def prepare(self) -> tuple[dict, Path | None]:
        plugins = self.dir / "plugins"  # the version's plugins folder (airflow_local_settings too) + ours
        shutil.copytree(self.version.tree / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__"))
        for name in (
            "bench_orchestration_listener.py",
            *(["bench_floor_triggers.py"] if self.variant == "floor" else []),
        ):
            shutil.copy(ORCH / "plugin" / name, plugins / name)
        dags = None
        if self.variant == "floor":
            dags = self.dir / "floor_dags"
            dags.mkdir()
            (dags / "floor_dags.py").write_text((ORCH / "floor_dags.py").read_text())
            (dags / "floor_spec.json").write_text(json.dumps(self.floor_of, indent=1))
        return self.version.env(self.dir, dags=dags, extra=self.extra()), dags

    def run(self) -> dict:
        env, _ = self.prepare()
        home = self.dir / "airflow"
        measure = [
            sys.executable,
            str(ORCH / "measure.py"),
            "--out",
            str(self.dir),
            "--timeout",
            str(self.timeout),
        ]
        if self.executor == "local":
            port = free_port()
            meta_url = f"sqlite:///{home / 'airflow.db'}"
            project = home / "crypto_ml.db"
            measure += ["--watch-file", str(home / "airflow.db"), "--watch-file", str(project)]
            cmd = [
                str(self.version.venv_bin / "crypto-ml"),
                "pipeline",
                "--port",
                str(port),
                "--timeout",
                str(self.timeout - 60),
            ]
            if self.days > 1:  # the same stack, then the next days triggered on it (days.py)
                cmd = [
                    str(self.version.venv_bin / "python"),
                    str(ORCH / "days.py"),
                    "--days",
                    str(self.days),
                    "local",
                    "--date",
                    self.logical.isoformat(),
                    "--port",
                    str(port),
                    "--timeout",
                    str(self.timeout - 60),
                ]
            self.preload(env, f"sqlite:///{project}")
        else:
            secrets = subprocess.run(
                [str(self.version.venv_bin / "crypto-ml"), "stack", "secrets"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=self.dir,
            ).stdout
            for line in secrets.splitlines():
                if line.startswith("export "):
                    key, _, value = line[len("export ") :].partition("=")
                    env[key] = shlex.split(value)[0]
            meta_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}_airflow"
            measure += [
                "--watch-pg",
                PG.replace("postgresql://", "postgresql://", 1),
                "--watch-pg-db",
                f"{self.db_name}_airflow",
                "--watch-pg-db",
                self.db_name,
            ]
            stack_run = [
                "--date",
                self.logical.isoformat(),
                "--name",
                self.db_name,
                "--port",
                str(free_port()),
                "--flower-port",
                str(free_port()),
                "--airflow-workers",
                str(self.workers),
                "--engine-workers",
                str(self.workers),
                "--timeout",
                str(self.timeout - 60),
            ]
            cmd = [str(self.version.venv_bin / "crypto-ml"), "stack", "run", *stack_run]
            if self.days > 1:  # the same stack, then the next days triggered on it (days.py)
                cmd = [
                    str(self.version.venv_bin / "python"),
                    str(ORCH / "days.py"),
                    "--days",
                    str(self.days),
                    "celery",
                    "--",
                    *stack_run,
                ]
            self._create_pg_db(self.db_name)
            self.preload(env, f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}")
        self.command = " ".join(shlex.quote(c) for c in cmd)
        say(f"{self.name}: {self.command}  (log: {self.dir / 'command.log'})")
        started = time.monotonic()
        subprocess.run(measure + ["--", *cmd], env=env, check=False, cwd=self.dir)
        elapsed = time.monotonic() - started
        try:
            result = analyze.summarize(folder=self.dir, meta_url=meta_url, master=MASTER)
            if self.days > 1:  # the first day, on the fresh stack, for the record next to the measured one
                first = analyze.summarize(folder=self.dir, meta_url=meta_url, master=MASTER, which=0)
                result["first_day"] = {
                    k: first[k]
                    for k in (
                        "master_state",
                        "wall",
                        "coins",
                        "cpu_per_coin",
                        "task_instances",
                        "starts_per_coin",
                        "cpu_window",
                    )
                }
        except Exception as exc:  # noqa: BLE001 - report which run and where its log is
            tail = (self.dir / "command.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name}: no figures ({exc}); the command's log ends:\n{tail}") from exc
        finally:
            if self.executor == "celery":
                self.destroy_celery()
        result["api_requests"] = analyze.api_requests(self.dir, window=(result["t0"], result["t1"]))
        result.update(
            {
                "run": self.name,
                "version": self.version.name,
                "tree": self.version.label,
                "days": self.days,
                "executor": self.executor,
                "workers": self.workers,
                "variant": self.variant,
                "command": self.command,
                "elapsed": elapsed,
                "dir": str(self.dir),
            }
        )
        (self.dir / "result.json").write_text(json.dumps(result, indent=1, default=str))
        say(
            f"{self.name}: master {result['master_state']} in {result['wall']:.1f} s, "
            f"{result['coins']} coins, "
            f"{result['task_instances']} TIs, {result['starts_per_coin']:.2f} starts/coin, "
            f"{(result['cpu_per_coin'] or 0):.2f} CPU-s/coin"
        )
        return result

    def preload(self, env: dict, db_url: str) -> None:
        """The history before the timed day, stored with the version's own ``crypto-ml ingest``
        (synthetic markets only; the replay's first daily run stores its history itself, as a
        fresh ``bash scripts/main.sh`` does)."""
        if self.market is None or self.variant == "floor":
            return
        (self.dir / "airflow").mkdir(exist_ok=True)
        done = subprocess.run(
            [
                str(self.version.venv_bin / "crypto-ml"),
                "ingest",
                "--source",
                str(self.market / "history" / "prices.csv"),
                "--db",
                db_url,
                "--quiet",
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=self.dir,
        )
        if done.returncode:
            raise RuntimeError(
                f"{self.name}: crypto-ml ingest failed:\n{(done.stdout + done.stderr)[-2000:]}"
            )

    def _create_pg_db(self, name: str) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()

    def destroy_celery(self) -> None:
        """Drop this run's two databases and Redis keys (nothing else on the servers)."""
        import redis
        from sqlalchemy import create_engine, text

        engine = create_engine(PG, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for db in (f"{self.db_name}_airflow", self.db_name):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        engine.dispose()
        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"{self.db_name}:*"):
            client.delete(key)


def floor_input(version: Version, real: dict, work: Path, history_day: dt.date) -> dict:
    """The floor's spec: the version's DAG shape (its own DagBag) plus what the real run did."""
    out = work / f"floor_spec_{version.name}.json"
    if not out.exists():
        env = version.env(work / f"probe-{version.name}")
        done = subprocess.run(
            [
                str(version.venv_bin / "python"),
                str(ORCH / "floor_spec.py"),
                str(version.tree / "dags"),
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=work,
        )
        if done.returncode:
            raise RuntimeError(f"floor spec of {version.name} failed:\n{done.stderr[-3000:]}")
    spec = json.loads(out.read_text())
    spec["dags"] = [d for d in spec["dags"] if d["dag_id"] in (MASTER, COIN)]
    starts: dict = {}
    for key, per_ti in real["starts_per_ti"].items():
        dag, task = key.split(".", 1)
        starts.setdefault(dag, {})[task] = round(per_ti)
    deferrals: dict = {}
    for key, per_ti in real.get("deferrals_per_ti", {}).items():
        dag, task = key.split(".", 1)
        deferrals.setdefault(dag, {})[task] = round(per_ti)
    for d in spec["dags"]:  # a task the real run never started (EmptyOperator, ended in the triggerer)
        for t in d["tasks"]:
            if f"{d['dag_id']}.{t['task_id']}" in real["tis_by_task"]:
                starts.setdefault(d["dag_id"], {}).setdefault(t["task_id"], 0)
    branch_choice = {}
    for d in spec["dags"]:
        for t in d["tasks"]:
            if t["branch"]:
                counts = {
                    down: real["branch_taken"].get(f"{d['dag_id']}.{down}", {}).get("success", 0)
                    for down in t["downstream"]
                }
                branch_choice[f"{d['dag_id']}.{t['task_id']}"] = max(sorted(counts), key=lambda k: counts[k])
    coins = real["coin_ids"] or [f"coin-{i:04d}" for i in range(real["coins"])]
    day = history_day.isoformat() if not real.get("market") else real["market_day"]
    return {
        **spec,
        "coins": coins,
        "day": day,
        "starts": starts,
        "deferrals": deferrals,
        "branch_choice": branch_choice,
    }


# -- reports ---------------------------------------------------------------------------------------
def _f(v, fmt="{:.1f}"):
    return "–" if v is None else fmt.format(v)


def _runs(states: dict) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no coin runs"


def _mem(r: dict) -> str:
    return f"{_f(r.get('peak_pss_mb'), '{:.0f}')} ({r['peak_rss_mb']:.0f}) MB"


def compare_table(results: list[dict]) -> list[str]:
    lines = [
        "| version | executor | variant | master run | wall | vs old | vs floor | task inst. | "
        "process starts / coin | CPU-s / coin | queue wait p50 / p95 | triggerer CPU | "
        "scheduler CPU (main) | "
        "peak PSS (RSS) sum | other processes' CPU |",
        "|" + "---|" * 15,
    ]
    by = {(r["version"], r["executor"], r["workers"], r["variant"], r.get("rep", 1)): r for r in results}
    for r in results:
        old = by.get(("old", r["executor"], r["workers"], "real", r.get("rep", 1)))
        floor = by.get((r["version"], r["executor"], r["workers"], "floor", r.get("rep", 1)))
        cpu = r["cpu_window"]
        lines.append(
            f"| {r['version']} ({r['tree']}) | {_executor(r)} "
            f"| {r['variant']}{_rep(r)} | {r['master_state']}, {r['coins']} coins "
            f"({_runs(r['child_runs'])}) | {_f(r['wall'])} s "
            f"| {_f(r['wall'] / old['wall'], '{:.2f}x') if old and r['variant'] == 'real' else '–'} "
            f"| {_f(r['wall'] / floor['wall'], '{:.2f}x') if floor and r['variant'] == 'real' else '–'} "
            f"| {r['task_instances']} (+{r['ti_history']} hist.) | {r['starts_per_coin']:.2f} "
            f"| {_f(r['cpu_per_coin'], '{:.2f}')} "
            f"| {_f(r['queue_wait_p50'], '{:.2f}')} / {_f(r['queue_wait_p95'], '{:.2f}')} s "
            f"| {_f(cpu.get('triggerer'))} s | {_f(cpu.get('scheduler:main'))} s | {_mem(r)} "
            f"| {_f(cpu.get('others'), '{:.0f}')} s |"
        )
    return lines


def task_table(results: list[dict]) -> list[str]:
    real = [r for r in results if r["variant"] == "real"]
    tasks = sorted({k for r in real for k in r["own_p50"]})
    head = "| task | " + " | ".join(f"{r['version']} {r['executor']}" for r in real) + " |"
    lines = [
        "Per task: starts per task instance; own time p50 / p95 (s, listener: from the task reached "
        "to the process's exit, summed over its starts); start-up p50 (fork to task reached).",
        "",
        head,
        "|---|" + "---|" * len(real),
    ]
    for t in tasks:
        cells = []
        for r in real:
            key = next((k for k in r["starts_per_ti"] if k.endswith("." + t)), None)
            cells.append(
                f"{r['starts_per_ti'].get(key, '–') if key else '–'} starts; "
                f"{_f(r['own_p50'].get(t), '{:.2f}')} / {_f(r['own_p95'].get(t), '{:.2f}')}; "
                f"boot {_f(r['boot_p50'].get(t), '{:.2f}')}"
            )
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def _executor(r: dict) -> str:
    """``local``, or ``celery N+N`` (Airflow workers + engine workers)."""
    return "local" if r["executor"] == "local" else f"celery {r['workers']}+{r['workers']}"


def _rep(r: dict) -> str:
    return f" #{r['rep']}" if r.get("repeats", 1) > 1 else ""


def _run_label(r: dict) -> str:
    return f"{r['version']} {_executor(r)} {r['variant']}{_rep(r)}"


def repeat_table(results: list[dict]) -> list[str]:
    """With ``--repeat N``: per version and executor, the medians over the N pairs of runs (each
    real run followed by its floor, the pairs of all versions interleaved)."""
    import statistics

    groups: dict = defaultdict(lambda: defaultdict(dict))
    for r in results:
        if r.get("repeats", 1) > 1:
            groups[(r["version"], r["tree"], _executor(r))][r["rep"]][r["variant"]] = r
    if not groups:
        return []
    lines = [
        "Medians over the repeated pairs (a real run, then its floor; the versions' pairs interleaved). "
        "`vs floor` is the median of the pairs' own ratios, with the smallest and largest.",
        "",
        "| version | executor | pairs | real wall | floor wall | vs floor (min–max) "
        "| CPU-s / coin real / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for (version, tree, executor), reps in groups.items():
        pairs = [
            (v["real"], v["floor"])
            for v in reps.values()
            if "real" in v and "floor" in v and v["real"]["wall"] and v["floor"]["wall"]
        ]
        if not pairs:
            continue
        ratios = [a["wall"] / b["wall"] for a, b in pairs]
        med = statistics.median
        lines.append(
            f"| {version} ({tree}) | {executor} | {len(pairs)} | {med(a['wall'] for a, _ in pairs):.1f} s "
            f"| {med(b['wall'] for _, b in pairs):.1f} s "
            f"| **{med(ratios):.2f}x** ({min(ratios):.2f}–{max(ratios):.2f}) "
            f"| {med(a['cpu_per_coin'] or 0 for a, _ in pairs):.2f} "
            f"/ {med(b['cpu_per_coin'] or 0 for _, b in pairs):.2f} |"
        )
    return lines


def steps_table(results: list[dict]) -> list[str]:
    """Where a coin run's time goes (``analyze.coin_steps``), p50 per step, one column per run."""
    runs = [r for r in results if r.get("coin_steps")]
    if not runs:
        return []
    keys = list(dict.fromkeys(k for r in runs for k in r["coin_steps"]))
    lines = [
        "A coin run step by step, p50 over the coin runs (s): `before` a task is from the end of the "
        "previous one (or the run's start) to its start (scheduling, queue, process start-up or the "
        "hand-off to the triggerer), `span` its start to its end (for a task in the triggerer, the "
        "whole wait).",
        "",
        "| step | " + " | ".join(_run_label(r) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for k in keys:
        lines.append(
            f"| {k} | "
            + " | ".join(_f((r["coin_steps"].get(k) or {}).get("p50"), "{:.2f}") for r in runs)
            + " |"
        )
    return lines


def cpu_table(results: list[dict]) -> list[str]:
    """CPU-seconds of each component in the master run's window, one column per run."""
    runs = [r for r in results if r.get("cpu_window")]
    if not runs:
        return []
    keys = sorted({k for r in runs for k in r["cpu_window"] if ":" not in k} - {"total", "others"})
    lines = [
        "CPU-seconds in the master run's window by component (process subtree: a component's forked "
        "workers and task processes count with it).",
        "",
        "| component | " + " | ".join(_run_label(r) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for k in [*keys, "total"]:
        lines.append(f"| {k} | " + " | ".join(_f(r["cpu_window"].get(k)) for r in runs) + " |")
    return lines


def api_table(results: list[dict]) -> list[str]:
    """The api-server's requests per coin by kind (``analyze.api_requests`` on each run's access
    log): count per coin, and the mean duration (ms), which includes waiting for the database."""
    runs = []
    for r in results:
        if r.get("api_requests") is None and r.get("dir"):
            r["api_requests"] = analyze.api_requests(Path(r["dir"]))
        if r.get("api_requests"):
            runs.append(r)
    if not runs:
        return []
    totals = Counter()
    for r in runs:
        for kind, row in r["api_requests"].items():
            totals[kind] += row["n"] / (r.get("coins") or 1)
    kinds = [k for k, per_coin in totals.most_common() if per_coin / len(runs) >= 0.05]
    lines = [
        "The api-server's requests per coin (count per coin; mean duration in ms, waiting for the "
        "metadata DB included; `4xx` = answered with an error, e.g. a Connection that is not defined), "
        "from its access log.",
        "",
        "| request | " + " | ".join(_run_label(r) for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for kind in kinds:
        cells = []
        for r in runs:
            row = r["api_requests"].get(kind)
            if not row:
                cells.append("–")
                continue
            err = f", {row['errors']} 4xx" if row["errors"] else ""
            cells.append(f"{row['n'] / (r.get('coins') or 1):.2f} ({1000 * row['s'] / row['n']:.0f} ms{err})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + " | ".join(
            f"**{sum(x['n'] for x in r['api_requests'].values()) / (r.get('coins') or 1):.1f}**" for r in runs
        )
        + " |"
    )
    return lines


def days_table(results: list[dict]) -> list[str]:
    """With ``--days N``: the first master run (on the fresh stack) next to the measured last one."""
    runs = [r for r in results if r.get("first_day")]
    if not runs:
        return []
    lines = [
        "Each command ran the master DAG on consecutive days on one stack; the tables above measure its "
        "last run (a warm daily run). Its first run, on the freshly started stack:",
        "",
        "| run | first day: master run | wall | CPU-s / coin | last day: wall | CPU-s / coin |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        f = r["first_day"]
        lines.append(
            f"| {_run_label(r)} | {f['master_state']}, {f['coins']} coins | {_f(f['wall'])} s | "
            f"{_f(f['cpu_per_coin'], '{:.2f}')} | {_f(r['wall'])} s | {_f(r['cpu_per_coin'], '{:.2f}')} |"
        )
    return lines


def write_report(
    path: Path, title: str, command: str, results: list[dict], notes: list[str], extra: list[str]
) -> None:
    lines = [
        f"# {title}",
        "",
        "```",
        command,
        "```",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"(load average at the end {os.getloadavg()[0]:.2f}).",
        "",
    ]
    if FAILED:
        extra = extra + ["", "**Runs without figures:**", ""] + [f"- {f}" for f in FAILED]
    lines += extra + [""] + repeat_table(results) + [""] + compare_table(results) + [""] + days_table(results)
    lines += [""] + task_table(results)
    lines += [""] + steps_table(results)
    lines += (
        [""] + cpu_table(results) + [""] + api_table(results) + ["", "## How each figure is measured", ""]
    )
    lines += notes
    path.write_text("\n".join(lines) + "\n")
    (path.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    say(f"wrote {path}")


NOTES = [
    "- **wall**: `end_date - start_date` of the master DAG run in the metadata DB "
    "(the run of the scheduler's daily interval on the embedded default, the REST-triggered run on "
    "the Celery stack; with `--days N`, "
    "the last of N REST-triggered runs on consecutive days on one stack).",
    "- **task inst.**: rows of `task_instance` of the master run and of every DAG run started while it ran; "
    "`hist.`: rows of `task_instance_history` (earlier tries: retries, clears).",
    "- **process starts / coin**: task processes that reached the task (the benchmark-only listener's "
    "`on_task_instance_running`, which runs in the task process at every start, a resume after deferral "
    "included), master tasks included, divided by the coins (coin DAG runs).",
    "- **CPU-s / coin**: CPU of every process of the command's tree (stack components, their forked workers "
    "and task processes, engine workers) between the master run's start and end, from `/proc` samples each "
    "second: sum over live processes of own + reaped-children CPU, plus the sampler's `RUSAGE_CHILDREN` "
    "(it is a child subreaper, so orphans are reaped there). Short task processes are not missed: a reaped "
    "process's CPU is in its parent's children times. The whole command's CPU (start-up and stop included) "
    "is `getrusage(RUSAGE_CHILDREN)` after it exited (in the .json).",
    "- **queue wait**: `start_date - queued_dttm` of each task instance (p50 / p95); a resumed deferred task "
    "keeps its first start_date, so its resume wait is not in it.",
    "- **triggerer CPU / scheduler CPU (main)**: in the master-run window, the triggerer's process subtree "
    "(supervisor and trigger runner), and the scheduler's main process alone (its LocalExecutor workers "
    "and their task processes are counted in the total, not here).",
    "- **peak PSS (RSS) sum**: largest sum over the tree's processes in the window of their proportional set "
    "size (`/proc/<pid>/smaps_rollup`, every 5 s: shared pages split between the processes sharing them, so "
    "the sum is the memory in use) and, in brackets, of their RSS (each second; counts shared pages of "
    "forked processes once per process, so it overstates).",
    "- **DB growth** (scale table): size of the metadata DB and of the project DB (SQLite file with its "
    "journal, or `pg_database_size`) at the master run's end minus at its start.",
    "- **own time** (per-task table): from the listener's `on_task_instance_running` (Airflow's start-up "
    "done: fork, DAG parse, execution-API handshake) to the process's exit (an `atexit` hook, which the task "
    "supervisor runs for the forked task process), summed over the starts of one task instance; **boot** is "
    "fork to task reached.",
    "- **other processes' CPU**: CPU the rest of the machine used during the window (`/proc/stat` busy time "
    "minus the tree's): a noisy neighbour shows here; figures for the record need it near 0.",
    "- **floor**: the version's DAGs rebuilt with no-op bodies from its own DagBag (same ids, dependencies, "
    "trigger rules, fan-out; TriggerDagRunOperator kept; each task deferring or starting from the "
    "triggerer as many times as the real one started per task instance), run through the same command.",
]


FAILED: list[str] = []  # runs that gave no figures (named in the report)


def run_matrix(
    args,
    versions: list[Version],
    executors: list[tuple[str, int]],
    coins_list: list[int],
    floors: bool,
    work: Path,
) -> list[dict]:
    # The measured (last) master run is yesterday's interval and the replayed history day; with
    # --days N the stack runs the N-1 days before it first (replay anchored on the first day;
    # orchestration/days.py triggers each day).
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    measured_day = dt.date.fromisoformat(args.history_day)
    logical = last - dt.timedelta(days=args.days - 1)
    history_day = measured_day - dt.timedelta(days=args.days - 1)
    results = []
    for n in coins_list:
        market = None
        if n != args.day_coins or args.synthetic:
            market = synthetic_market(
                work / f"market-{n}{f'-d{args.days}' if args.days > 1 else ''}",
                n,
                last,
                measured_day,
                args.days,
            )
        # Each pair (real, floor) of a version on an executor; with --repeat the versions interleave.
        for rep, version, (executor, workers) in itertools.product(
            range(1, args.repeat + 1), versions, executors
        ):
            tag = f"-{n}" + (f"-rep{rep}" if args.repeat > 1 else "")
            run = Run(
                version=version,
                executor=executor,
                variant="real",
                work=work,
                logical=logical,
                history_day=history_day,
                market=market,
                workers=workers,
                timeout=args.timeout,
                tag=tag,
                days=args.days,
            )
            try:
                real = run.run()
            except Exception as exc:  # noqa: BLE001 - the other runs go on; the report names it
                say(f"FAILED {run.name}: {exc}")
                FAILED.append(f"{run.name}: {str(exc).splitlines()[0]} (log: {run.dir / 'command.log'})")
                continue
            real["market"] = str(market) if market else None
            real["market_day"] = last.isoformat()
            real["rep"], real["repeats"] = rep, args.repeat
            results.append(real)
            if floors:
                try:
                    spec = floor_input(version, real, work, measured_day)
                    if args.days > 1:  # the first master run's logical day (see floor_dags.run_day)
                        spec["logical_date"] = logical.isoformat()
                    floor = Run(
                        version=version,
                        executor=executor,
                        variant="floor",
                        work=work,
                        logical=logical,
                        history_day=history_day,
                        market=None,
                        workers=workers,
                        timeout=args.timeout,
                        floor_of=spec,
                        tag=tag,
                        days=args.days,
                    ).run()
                except Exception as exc:  # noqa: BLE001
                    say(f"FAILED floor of {run.name}: {exc}")
                    FAILED.append(f"floor of {run.name}: {str(exc).splitlines()[0]}")
                    continue
                floor["market"] = real["market"]
                floor["rep"], floor["repeats"] = rep, args.repeat
                results.append(floor)
    return results


def cmd_compare(args) -> None:
    work = Path(args.work or f"/tmp/bench-orch-{time.strftime('%Y%m%d-%H%M%S')}")
    work.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.coins, args.executors = args.coins if args.coins != 89 else 5, args.executors
    versions = parse_versions(args.versions, old_tree=Path(args.old_tree), new_tree=Path(args.new_tree))
    for v in versions:
        v.check(work)
    executors = [(e, args.celery_workers) if e == "celery" else (e, 1) for e in args.executors.split(",")]
    say(f"work dir {work}; versions {[f'{v.name}={v.label}' for v in versions]}; executors {executors}")
    results = run_matrix(args, versions, executors, [args.coins], not args.no_floor, work)
    out = Path(
        args.out
        or ROOT / "benchmarks" / "results" / ("orchestration_quick.md" if args.quick else "orchestration.md")
    )
    market = (
        "the replayed history day"
        if args.coins == args.day_coins and not args.synthetic
        else f"a synthetic CSV market of {args.coins} coins"
    )
    write_report(
        out,
        "Orchestration: old vs new pipeline, no-op floor, both executors",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        results,
        NOTES,
        [
            f"Day: {market} (history day {args.history_day}); old = {OLD_COMMIT} (worktree "
            f"{args.old_tree}), new = {args.new_tree}. Work dir (logs, events, samples): {work}."
        ],
    )


def cmd_scale(args) -> None:
    work = Path(args.work or f"/tmp/bench-orch-scale-{time.strftime('%Y%m%d-%H%M%S')}")
    work.mkdir(parents=True, exist_ok=True)
    version = Version("new", Path(args.new_tree))
    version.check(work)
    args.synthetic = True
    coins = [int(c) for c in args.coins.split(",") if c.strip()]  # "": Celery runs only
    results = run_matrix(args, [version], [("local", 1)], coins, False, work)
    if args.celery_coins:
        for w in [int(x) for x in args.celery_workers.split(",")]:
            results += run_matrix(args, [version], [("celery", w)], [args.celery_coins], False, work)
    out = Path(args.out or ROOT / "benchmarks" / "results" / "orchestration_scale.md")
    lines = [
        "| executor | coins | master run | wall (min) | CPU-s / coin | CPU-s total (window) | "
        "scheduler CPU (main) | triggerer CPU | metadata DB growth | project DB growth "
        "| peak PSS (RSS) sum |",
        "|" + "---|" * 11,
    ]
    for r in results:
        g = r["growth"]
        meta = next((v for k, v in g.items() if k.endswith("airflow.db") or k.endswith("_airflow")), None)
        proj = next(
            (
                v
                for k, v in g.items()
                if k.endswith("crypto_ml.db") or (k.startswith("pg:") and not k.endswith("_airflow"))
            ),
            None,
        )
        ex = _executor(r)
        lines.append(
            f"| {ex} | {r['coins']} | {r['master_state']} | {r['wall'] / 60:.2f} "
            f"| {_f(r['cpu_per_coin'], '{:.2f}')} "
            f"| {r['cpu_window'].get('total', 0):.0f} | {_f(r['cpu_window'].get('scheduler:main'))} "
            f"| {_f(r['cpu_window'].get('triggerer'))} | {_f((meta or 0) / 2**20, '{:.1f}')} MB "
            f"| {_f((proj or 0) / 2**20, '{:.2f}')} MB | {_mem(r)} |"
        )
    png = out.with_suffix(".png")
    plot_scale(results, png)
    write_report(
        out,
        "Orchestration scale curve (synthetic coins, one daily run each)",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        results,
        NOTES,
        lines
        + [
            "",
            f"![scale curve]({png.name})",
            "",
            f"Synthetic CSV market: coins block-bootstrapped from the bundled history "
            f"(SyntheticSource), the calendar shifted so history day {args.history_day} is the "
            f"run's day; the history before the day pre-loaded with `crypto-ml ingest` "
            f"(not timed), so the run stores one new day per coin. Work dir: {work}.",
        ],
    )


def plot_scale(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    groups: dict[str, list] = {}
    for r in results:
        key = _executor(r)
        groups.setdefault(key, []).append(r)
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["coins"])
        style = "o-" if len(rs) > 1 else "s"
        a1.plot([r["coins"] for r in rs], [r["wall"] / 60 for r in rs], style, label=key)
        a2.plot([r["coins"] for r in rs], [r["cpu_per_coin"] or 0 for r in rs], style, label=key)
    a1.set(xlabel="coins", ylabel="master run (minutes)", title="Daily run wall time")
    a1.set_ylim(bottom=0)
    a2.set(xlabel="coins", ylabel="CPU-s per coin (all processes)", title="Cost per coin")
    a2.set_ylim(bottom=0)
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    say(f"wrote {path}")


def cmd_report(args) -> None:
    """Rebuild a report from a work dir: each run's result.json, or (``--reanalyze``) the figures
    read again from the run's files and its metadata DB (SQLite in the run dir; for a Celery run
    whose harness was stopped, its PostgreSQL database is still there: ``--meta-url``)."""
    work = Path(args.work)
    results = []
    for folder in sorted(p for p in work.iterdir() if (p / "measure.json").exists()):
        saved = (
            json.loads((folder / "result.json").read_text()) if (folder / "result.json").exists() else None
        )
        if saved is None or args.reanalyze:
            version, executor, *_ = folder.name.split("-")
            url = (
                args.meta_url
                if executor.startswith("celery")
                else f"sqlite:///{folder / 'airflow' / 'airflow.db'}"
            )
            if not url:
                say(f"skipped {folder.name}: give --meta-url for a Celery run")
                continue
            fresh = analyze.summarize(folder=folder, meta_url=url, master=MASTER)
            meta = {k: v for k, v in (saved or {}).items() if k not in fresh}
            meta.setdefault("version", version)
            meta.setdefault("executor", "celery" if executor.startswith("celery") else "local")
            meta.setdefault("workers", int(executor[6:] or 1) if executor.startswith("celery") else 1)
            meta.setdefault("variant", "floor" if "-floor-" in folder.name else "real")
            meta.setdefault("tree", meta["version"])
            meta.setdefault("command", " ".join(json.loads((folder / "measure.json").read_text())["cmd"]))
            saved = {**meta, **fresh}
            (folder / "result.json").write_text(json.dumps(saved, indent=1, default=str))
        results.append(saved)
    results.sort(key=lambda r: (r["version"] != "old", r["executor"], r["workers"], r["variant"] != "real"))
    write_report(
        Path(args.out),
        f"Orchestration runs of {work}",
        "python " + " ".join(shlex.quote(a) for a in sys.argv),
        results,
        NOTES,
        [f"Work dir: {work}."],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--new-tree", default=str(ROOT))
    common.add_argument("--old-tree", default="/work/bench_old")
    common.add_argument("--history-day", default="2017-06-25", help="replayed day (89 coins on 2017-06-25)")
    common.add_argument("--day-coins", type=int, default=89, help="coins of the replayed day")
    common.add_argument("--timeout", type=float, default=3600, help="per command (s)")
    common.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every pair (real, floor) N times, the versions interleaved; report medians",
    )
    common.add_argument(
        "--days",
        type=int,
        default=1,
        help="master runs on one stack, on consecutive days; the last one is measured "
        "(2: a warm daily run, after a first day on the same stack; orchestration/days.py)",
    )
    common.add_argument("--work", default=None, help="work dir (default /tmp/bench-orch-<time>)")
    common.add_argument(
        "--out", default=None, help="markdown file (default benchmarks/results/orchestration*.md)"
    )
    c = sub.add_parser("compare", parents=[common], help="old vs new vs floor, on each executor")
    c.add_argument(
        "--coins", type=int, default=89, help="89: the replayed day; other N: a synthetic CSV market"
    )
    c.add_argument("--executors", default="local,celery")
    c.add_argument(
        "--versions",
        default="old,new",
        help="[NAME=]BASE[+VAR=VALUE...], comma-separated; BASE: old, new or a commit",
    )
    c.add_argument("--celery-workers", type=int, default=1, help="Airflow workers = engine workers")
    c.add_argument("--synthetic", action="store_true", help="a synthetic market even for --coins 89")
    c.add_argument("--no-floor", action="store_true")
    c.add_argument("--quick", action="store_true", help="smoke: 5 synthetic coins (unless --coins)")
    c.set_defaults(func=cmd_compare)
    s = sub.add_parser("scale", parents=[common], help="the new pipeline over 100, 300, 1000 coins")
    s.add_argument("--coins", default="100,300,1000")
    s.add_argument("--celery-coins", type=int, default=300, help="0: no Celery runs")
    s.add_argument("--celery-workers", default="1,2", help="Airflow+engine workers per Celery run")
    s.set_defaults(func=cmd_scale)
    r = sub.add_parser("report", help="rebuild a report from a work dir (after an interrupted run)")
    r.add_argument("work")
    r.add_argument("--out", required=True)
    r.add_argument("--reanalyze", action="store_true", help="read every run's figures again")
    r.add_argument("--meta-url", default=None, help="metadata DB of a Celery run (not yet dropped)")
    r.set_defaults(func=cmd_report)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

"""Figures of one benchmark run, read after it from outside: the metadata DB's tables, the
listener's events and the process-tree samples of ``measure.py``. Imports nothing of the project."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from pathlib import Path


def _ts(value) -> float | None:
    """Epoch seconds of a timestamp from SQLite (a string) or PostgreSQL (a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def read_metadata(url: str, master: str, which: int = -1) -> dict:
    """Runs and task instances of the metadata DB at ``url``; ``master``: the ``which``-th run of
    the master DAG by start (default the newest)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            runs = [
                dict(r._mapping)
                for r in conn.execute(
                    text(
                        "SELECT dag_id, run_id, state, queued_at, start_date, end_date, logical_date "
                        "FROM dag_run"
                    )
                )
            ]
            tis = [
                dict(r._mapping)
                for r in conn.execute(
                    text(
                        "SELECT dag_id, task_id, run_id, map_index, state, try_number, queued_dttm, "
                        "start_date, end_date, hostname FROM task_instance"
                    )
                )
            ]
            history = conn.execute(text("SELECT count(*) FROM task_instance_history")).scalar()
    finally:
        engine.dispose()
    masters = [r for r in runs if r["dag_id"] == master]
    if not masters:
        raise RuntimeError(f"no {master} run in the metadata DB {url}")
    m = sorted(masters, key=lambda r: _ts(r["start_date"]) or 0)[which]
    return {"runs": runs, "tis": tis, "history": history, "master": m}


def _load_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by a killed process
    return out


class Tree:
    """The process-tree samples of measure.py."""

    def __init__(self, folder: Path):
        self.samples = _load_jsonl(folder / "samples.jsonl")
        self.cmds = {(p["pid"], p["ct"]): p for p in _load_jsonl(folder / "procs.jsonl")}
        self.measure = (
            json.loads((folder / "measure.json").read_text()) if (folder / "measure.json").exists() else {}
        )
        root = self.measure.get("cmd")
        self.cli_pid = None
        for s in self.samples[:20]:
            for row in s["procs"]:
                cmd = self.cmds.get((row[0], row[2]), {}).get("cmd", "")
                if root and cmd.endswith(" ".join(root[1:])[-60:]):
                    self.cli_pid = row[0]
                    break
            if self.cli_pid:
                break

    def component(self, rows_by_pid: dict, pid: int) -> str:
        """The stack component a process belongs to: its ancestor started by the command."""
        seen = 0
        if pid == self.cli_pid:
            return "cli"
        while pid in rows_by_pid and seen < 50:
            row = rows_by_pid[pid]
            if row[1] == self.cli_pid:
                return _label(self.cmds.get((row[0], row[2]), {}).get("cmd", "?"))
            pid = row[1]
            seen += 1
        return "cli" if pid == self.cli_pid else "other"

    def at(self, t: float) -> dict:
        """The sample nearest to epoch ``t``."""
        return min(self.samples, key=lambda s: abs(s["t"] - t))

    def cpu(self, sample: dict) -> dict[str, float]:
        """CPU seconds so far: total (whole tree) and per component (own + reaped children);
        ``<comp>:main`` is the component's first process alone (e.g. the scheduler loop)."""
        rows = {r[0]: r for r in sample["procs"]}
        out: dict[str, float] = defaultdict(float)
        out["total"] = sample["rc"][0] + sample["rc"][1]
        for pid, r in rows.items():
            v = r[3] + r[4] + r[5] + r[6]
            out["total"] += v
            comp = self.component(rows, pid)
            out[comp] += v
            if r[1] == self.cli_pid:
                out[comp + ":main"] += r[3] + r[4]
        return out

    def window(self, t0: float, t1: float) -> dict:
        a, b = self.at(t0), self.at(t1)
        ca, cb = self.cpu(a), self.cpu(b)
        inside = [s for s in self.samples if t0 <= s["t"] <= t1] or [b]
        peak = max(sum(r[7] for r in s["procs"]) for s in inside)
        pss = [s["pss"] for s in inside if s.get("pss")]
        sizes = {k: b["sizes"].get(k, 0) - a["sizes"].get(k, 0) for k in b["sizes"]}
        cpu = {k: cb.get(k, 0.0) - ca.get(k, 0.0) for k in set(ca) | set(cb)}
        if "busy" in a and "busy" in b:  # CPU the rest of the machine used meanwhile (noise)
            cpu["others"] = (b["busy"] - a["busy"]) - cpu["total"]
        return {
            "cpu": cpu,
            "peak_rss": peak,
            "peak_pss": max(pss) if pss else None,
            "growth": sizes,
            "sizes_end": b["sizes"],
            "sample_span": (b["t"] - a["t"]),
        }


def _label(cmd: str) -> str:
    parts = cmd.split()
    if parts and parts[0].rsplit("/", 1)[-1].startswith("python") and len(parts) > 1:
        parts = parts[1:]  # "python .../airflow dags unpause" -> "airflow dags unpause"
    cmd = " ".join(parts)
    for key, name in (
        ("triggerer", "triggerer"),
        ("dag-processor", "dag-processor"),
        ("dag_processor", "dag-processor"),
        ("scheduler", "scheduler"),
        ("api-server", "api-server"),
        ("api_server", "api-server"),
        ("celery worker", "airflow-worker"),
        ("airflow-worker", "airflow-worker"),
        ("flower", "flower"),
        (" worker", "engine-worker"),
    ):
        if key in cmd:
            return name
    return " ".join([parts[0].rsplit("/", 1)[-1], *parts[1:3]]) if parts else "?"


def summarize(
    *, folder: Path, meta_url: str, master: str, coins_hint: int | None = None, which: int = -1
) -> dict:
    meta = read_metadata(meta_url, master, which)
    m = meta["master"]
    t0, t1 = _ts(m["start_date"]), _ts(m["end_date"])
    wall = (t1 - t0) if t0 and t1 else None
    # The day's runs: the master and every run started while it ran.
    day_runs = [
        r
        for r in meta["runs"]
        if r is m
        or (
            r["dag_id"] != master
            and _ts(r["start_date"])
            and t0
            and t1
            and t0 - 1 <= _ts(r["start_date"]) <= t1
        )
    ]
    run_keys = {(r["dag_id"], r["run_id"]) for r in day_runs}
    tis = [t for t in meta["tis"] if (t["dag_id"], t["run_id"]) in run_keys]
    child_runs = [r for r in day_runs if r is not m]
    mapped = Counter(
        (t["dag_id"], t["task_id"]) for t in tis if t["map_index"] is not None and t["map_index"] >= 0
    )
    coins = len(child_runs) or (max(mapped.values()) if mapped else 0) or coins_hint or 1
    # Listener events: every task-process start.
    events = _load_jsonl(folder / "events.jsonl")
    running = [e for e in events if e["ev"] == "running" and (e["dag"], e["run"]) in run_keys]
    exits = {(e["pid"], e["dag"], e["task"], e["run"], e["map"]): e for e in events if e["ev"] == "exit"}
    starts_by_task = Counter((e["dag"], e["task"]) for e in running)
    # A start that exited without a success/failed/skipped listener call deferred (or was killed).
    deferred_by_task = Counter(
        (x["dag"], x["task"])
        for x in exits.values()
        if x.get("outcome") is None and (x["dag"], x["run"]) in run_keys
    )
    tis_by_task = Counter((t["dag_id"], t["task_id"]) for t in tis)
    own: dict[str, list[float]] = defaultdict(list)
    boot: dict[str, list[float]] = defaultdict(list)
    cpu_start: dict[str, list[float]] = defaultdict(list)
    per_ti: dict[tuple, float] = defaultdict(float)
    for e in running:
        x = exits.get((e["pid"], e["dag"], e["task"], e["run"], e["map"]))
        if e.get("fork"):
            boot[e["task"]].append(e["t"] - e["fork"])
        if x:
            per_ti[(e["dag"], e["task"], e["run"], e["map"], e["try"])] += x["t"] - e["t"]
            cpu_start[e["task"]].append(x["cpu"])
    for (_dag, task, *_), seconds in per_ti.items():
        own[task].append(seconds)
    waits = [
        (_ts(t["start_date"]) - _ts(t["queued_dttm"]))
        for t in tis
        if t["start_date"] and t["queued_dttm"] and _ts(t["start_date"]) >= _ts(t["queued_dttm"])
    ]
    tree = Tree(folder)
    win = tree.window(t0, t1) if (tree.samples and t0 and t1) else {"cpu": {}, "peak_rss": None, "growth": {}}
    ru = tree.measure.get("rusage_children", {})
    states = Counter(r["state"] for r in child_runs)
    return {
        "master_state": m["state"],
        "wall": wall,
        "t0": t0,
        "t1": t1,
        "coins": coins,
        "child_runs": dict(states),
        "task_instances": len(tis),
        "ti_history": meta["history"],
        "ti_states": dict(Counter(t["state"] for t in tis)),
        "process_starts": len(running),
        "starts_per_coin": len(running) / coins,
        "starts_by_task": {f"{d}.{k}": v for (d, k), v in sorted(starts_by_task.items())},
        "starts_per_ti": {
            f"{d}.{k}": round(v / tis_by_task[(d, k)], 2)
            for (d, k), v in starts_by_task.items()
            if tis_by_task[(d, k)]
        },
        "deferrals_per_ti": {
            f"{d}.{k}": round(v / tis_by_task[(d, k)], 2)
            for (d, k), v in deferred_by_task.items()
            if tis_by_task[(d, k)]
        },
        "tis_by_task": {f"{d}.{k}": v for (d, k), v in sorted(tis_by_task.items())},
        "queue_wait_p50": _pct(waits, 0.5),
        "queue_wait_p95": _pct(waits, 0.95),
        "own_p50": {k: _pct(v, 0.5) for k, v in sorted(own.items())},
        "own_p95": {k: _pct(v, 0.95) for k, v in sorted(own.items())},
        "boot_p50": {k: _pct(v, 0.5) for k, v in sorted(boot.items())},
        "task_cpu_p50": {k: _pct(v, 0.5) for k, v in sorted(cpu_start.items())},
        "cpu_window": win["cpu"],
        "cpu_per_coin": (win["cpu"].get("total", 0) / coins) if win["cpu"] else None,
        "peak_rss_mb": (win["peak_rss"] or 0) / 2**20,
        "peak_pss_mb": (win["peak_pss"] or 0) / 2**20 if win.get("peak_pss") else None,
        "growth": win.get("growth", {}),
        "cpu_command_total": ru.get("utime", 0) + ru.get("stime", 0),
        "command_wall": (tree.measure.get("ended", 0) - tree.measure.get("started", 0))
        if tree.measure
        else None,
        "exit_code": tree.measure.get("exit_code"),
        "coin_ids": sorted(r["run_id"].split("__")[0] for r in child_runs),
        "branch_taken": _branches(tis),
        "coin_steps": coin_steps(child_runs, tis),
    }


def coin_steps(runs: list[dict], tis: list[dict]) -> dict[str, dict[str, float | None]]:
    """Where a coin run's time goes, step by step (p50 / p95 over the coin runs, seconds).

    For each task of a run, in the order its instances started: ``before`` is from the end of the
    previous task (for the first, from the run's start) to this task's start (scheduling, queue,
    hand-off to the triggerer: Airflow's part), ``span`` from its start to its end (for a task that
    runs in the triggerer, the whole wait). ``run queued`` is queued_at to start of the run,
    ``after`` the last task's end to the run's end. Skipped tasks are left out."""
    by_run: dict[tuple, list[dict]] = defaultdict(list)
    for t in tis:
        if t["start_date"] and t["end_date"] and t["state"] != "skipped":
            by_run[(t["dag_id"], t["run_id"])].append(t)
    seg: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        steps = sorted(by_run.get((r["dag_id"], r["run_id"]), []), key=lambda t: _ts(t["start_date"]))
        start, end = _ts(r["start_date"]), _ts(r["end_date"])
        if not steps or not start or not end:
            continue
        if r.get("queued_at") and _ts(r["queued_at"]):
            seg["run queued"].append(start - _ts(r["queued_at"]))
        prev = start
        for t in steps:
            s, e = _ts(t["start_date"]), _ts(t["end_date"])
            seg[f"{t['task_id']} before"].append(s - prev)
            seg[f"{t['task_id']} span"].append(e - s)
            prev = max(prev, e)
        seg["after"].append(end - prev)
        seg["run total"].append(end - start)
    return {k: {"p50": _pct(v, 0.5), "p95": _pct(v, 0.95), "n": len(v)} for k, v in seg.items()}


def _branches(tis: list[dict]) -> dict[str, Counter]:
    """Per task: how often it succeeded and how often it was skipped (to pick a floor branch)."""
    out: dict[str, dict] = defaultdict(lambda: {"success": 0, "skipped": 0})
    for t in tis:
        if t["state"] in ("success", "skipped"):
            out[f"{t['dag_id']}.{t['task_id']}"][t["state"]] += 1
    return dict(out)


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REQUEST = re.compile(r"duration_us=(\d+).*?method=([A-Z]+) path=(\S+).*?status_code=(\d+)")


def _request_kind(method: str, path: str) -> str:
    """``PATCH task-instances/{id}/run``, ``POST xcoms <dag>.<task> <key>``, ``GET connections``,
    ``GET api dags/<dag>`` (the REST API), ..."""
    path = _ID.sub("{id}", path)
    parts = path.strip("/").split("/")
    if parts[:1] == ["execution"]:
        parts = parts[1:]
        if parts[:1] == ["xcoms"] and len(parts) >= 5:  # xcoms/dag/run/task/key
            return f"{method} xcoms {parts[1]}.{parts[3]} {parts[4]}"
        if parts[:1] in (["connections"], ["variables"], ["dag-runs"]):
            return f"{method} {parts[0]}" + (
                f" {parts[1]}" if parts[0] == "dag-runs" and len(parts) > 1 else ""
            )
        return f"{method} " + "/".join(parts)
    return f"{method} api " + "/".join(parts[2:4])


_STAMP = re.compile(r"^\W*(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)?")


def _line_time(line: str) -> float | None:
    m = _STAMP.match(line)
    if not m:
        return None
    stamp = dt.datetime.fromisoformat(m.group(1).replace(" ", "T"))
    if m.group(2) and m.group(2) != "Z":
        return stamp.replace(
            tzinfo=dt.datetime.strptime(m.group(2).replace(":", ""), "%z").tzinfo
        ).timestamp()
    return stamp.replace(tzinfo=dt.UTC).timestamp()


def api_requests(
    folder: Path, window: tuple[float | None, float | None] | None = None
) -> dict[str, dict[str, float]] | None:
    """The api-server's requests in a run, from its access log (``request finished`` lines):
    ``{kind: {"n": count, "s": summed duration in seconds, "errors": 4xx/5xx}}``; None without a log.
    With ``window`` (epoch seconds), only the lines stamped inside it (a run of several master
    runs: the measured one's)."""
    logs = sorted(Path(folder).glob("**/api-server*.log"))
    if not logs:
        return None
    t0, t1 = window or (None, None)
    out: dict[str, dict[str, float]] = {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "request finished" not in line:
                continue
            if t0 and t1:
                at = _line_time(line)
                if at is not None and not (t0 - 1 <= at <= t1 + 1):
                    continue
            m = _REQUEST.search(line)
            if not m:
                continue
            kind = _request_kind(m.group(2), m.group(3))
            row = out.setdefault(kind, {"n": 0, "s": 0.0, "errors": 0})
            row["n"] += 1
            row["s"] += int(m.group(1)) / 1e6
            row["errors"] += int(m.group(4)) >= 400
    return out

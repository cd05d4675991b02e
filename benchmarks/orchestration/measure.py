"""Run one command and measure its whole process tree from outside (no hook in the command).

    python measure.py --out DIR [--timeout S] [--watch-file PATH ...] [--watch-pg URL] -- CMD ...

- The process makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``): every
  descendant whose parent exits before it (a stack component's orphaned children) is re-parented
  here and reaped here, so ``getrusage(RUSAGE_CHILDREN)`` at the end holds the CPU time of every
  process the command started, however short-lived (the kernel adds a process's times, and the
  times of every descendant it reaped, to its parent when it is reaped).
- Every ``--interval`` seconds it samples the live tree through ``/proc`` (psutil): per process
  pid, ppid, start time, user/system CPU, the CPU of its reaped children, RSS; and the sizes of
  the watched database files (and every 5 s the tree's PSS sum, from ``smaps_rollup``)
  (``-journal``/``-wal`` included) or PostgreSQL databases. The CPU of the whole tree at time t
  is then exact up to the sampling races:
  ``sum over live processes (own + reaped children) + RUSAGE_CHILDREN of this process``.
- Writes ``DIR/samples.jsonl`` (one line per sample), ``DIR/procs.jsonl`` (the command line of
  every process seen) and ``DIR/measure.json`` (exit code, wall, rusage of all children).

SIGTERM/SIGINT are forwarded to the command (which stops its stack). After the command exits,
descendants still alive get 60 s, then SIGTERM and SIGKILL by pid (only processes of this tree).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import time

import psutil

PR_SET_CHILD_SUBREAPER = 36


def _rusage_children() -> list[float]:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [ru.ru_utime, ru.ru_stime, ru.ru_maxrss]


class _PgSizes:
    def __init__(self, url: str, names: list[str]):
        self.url, self.names, self.conn = url, names, None

    def read(self) -> dict[str, int]:
        try:
            if self.conn is None:
                import psycopg2

                self.conn = psycopg2.connect(self.url, connect_timeout=3)
                self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute(
                    "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname = ANY(%s)",
                    (self.names,),
                )
                return {f"pg:{n}": int(s) for n, s in cur.fetchall()}
        except Exception:  # noqa: BLE001 - the database may not exist yet
            self.conn = None
            return {}


def _file_sizes(paths: list[str]) -> dict[str, int]:
    out = {}
    for path in paths:
        total = 0
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                total += os.path.getsize(path + suffix)
            except OSError:
                pass
        out[path] = total
    return out


def _pss(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration, ValueError):
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--watch-file", action="append", default=[])
    parser.add_argument("--watch-pg", default=None, help="postgres URL (maintenance db)")
    parser.add_argument("--watch-pg-db", action="append", default=[])
    parser.add_argument("--log", default=None, help="the command's stdout+stderr (default DIR/command.log)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given after --")
    out = args.out
    os.makedirs(out, exist_ok=True)

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")

    exe = shutil.which(cmd[0], path=os.environ.get("PATH")) or cmd[0]
    log_fd = os.open(
        args.log or os.path.join(out, "command.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
    )
    started = time.time()
    pid = os.posix_spawn(
        exe,
        cmd,
        dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        ],
    )
    os.close(log_fd)

    stop = {"signal": None}

    def forward(signum, frame):
        stop["signal"] = signum
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    pg = _PgSizes(args.watch_pg, args.watch_pg_db) if args.watch_pg else None
    me = psutil.Process()
    seen: set[tuple[int, float]] = set()
    status = None
    reaped_ru = [0.0, 0.0]
    samples = open(os.path.join(out, "samples.jsonl"), "w")
    procs_out = open(os.path.join(out, "procs.jsonl"), "w")
    deadline = started + args.timeout
    sent_term = killed_at = None
    last_pg = last_pss = 0.0
    sizes: dict[str, int] = {}

    def reap() -> None:
        nonlocal status
        while True:
            try:
                got, st, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if got == 0:
                return
            reaped_ru[0] += ru.ru_utime
            reaped_ru[1] += ru.ru_stime
            if got == pid:
                status = os.waitstatus_to_exitcode(st)

    def sample() -> list:
        rows = []
        for p in me.children(recursive=True):
            try:
                with p.oneshot():
                    ct = p.cpu_times()
                    key = (p.pid, p.create_time())
                    row = [
                        p.pid,
                        p.ppid(),
                        key[1],
                        ct.user,
                        ct.system,
                        ct.children_user,
                        ct.children_system,
                        p.memory_info().rss,
                    ]
                    if key not in seen:
                        seen.add(key)
                        procs_out.write(
                            json.dumps(
                                {
                                    "pid": p.pid,
                                    "ct": key[1],
                                    "ppid": row[1],
                                    "cmd": " ".join(p.cmdline())[:400],
                                }
                            )
                            + "\n"
                        )
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            rows.append(row)
        return rows

    while True:
        reap()
        now = time.time()
        rows = sample()
        if args.watch_file:
            sizes.update(_file_sizes(args.watch_file))
        if pg is not None and now - last_pg >= 5:
            sizes.update(pg.read())
            last_pg = now
        busy = psutil.cpu_times()  # the whole machine: what others used meanwhile is busy - ours
        record = {
            "t": now,
            "rc": _rusage_children(),
            "procs": rows,
            "sizes": sizes,
            "busy": busy.user
            + busy.nice
            + busy.system
            + getattr(busy, "irq", 0)
            + getattr(busy, "softirq", 0),
        }
        if now - last_pss >= 5:  # proportional set size: shared pages split between their users
            record["pss"] = _pss(r[0] for r in rows)
            last_pss = now
        samples.write(json.dumps(record) + "\n")
        samples.flush()
        procs_out.flush()
        if status is not None:
            alive = rows
            if not alive:
                break
            if sent_term is None:
                sent_term = now + 60  # grace for stragglers to exit by themselves
            elif now > sent_term and killed_at is None:
                for r in alive:
                    try:
                        os.kill(r[0], signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                killed_at = now + 20
            elif killed_at is not None and now > killed_at:
                for r in alive:
                    try:
                        os.kill(r[0], signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        elif now > deadline and stop["signal"] is None:
            print(f"[measure] timeout after {args.timeout:.0f} s: stopping the command", file=sys.stderr)
            forward(signal.SIGTERM, None)
            deadline = now + 120
        elif now > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(args.interval)
    reap()
    samples.close()
    procs_out.close()
    result = {
        "cmd": cmd,
        "exit_code": status,
        "signal": stop["signal"],
        "started": started,
        "ended": time.time(),
        "rusage_children": dict(zip(("utime", "stime", "maxrss_kb"), _rusage_children())),
    }
    with open(os.path.join(out, "measure.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""The production files for real: the project's image built from its Dockerfile and the compose
stack run from docker-compose.yaml, on stand-ins for the base images no registry serves here.

One module-scoped stack (2 Airflow workers, 2 engine workers): every service healthy, the DAGs
unpaused through the REST API as the compose header says, the master's scheduled run to success,
one prediction per coin in the project database, both engine workers seen working in Flower, then
``down -v`` leaves nothing behind. The
Docker engine, the stand-ins and the image come from tests/helpers/docker.py; without them the
test skips locally and fails with CI=true. Its figures (build, up-to-healthy, run wall, memory)
are printed and written to $CRYPTO_ML_TEST_FIGURES (a JSON file) when that is set.
"""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest
import requests

from tests.helpers.docker import (
    ROOT,
    ComposeProject,
    DockerEngine,
    DockerUnavailable,
    build_project_image,
    build_standins,
    run,
)

pytestmark = [pytest.mark.slow, pytest.mark.docker]

OVERRIDE = ROOT / "tests" / "deploy" / "standins" / "compose.override.yaml"
IMAGE = "crypto-ml:test"
SERVICES = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "crypto_worker",
    "flower",
)
FIGURES: dict = {}
#: Airflow workers and engine workers each (2 by default; CRYPTO_ML_TEST_COMPOSE_WORKERS=1 measures
#: the 1+1 shape for the README's table).
WORKERS = int(os.environ.get("CRYPTO_ML_TEST_COMPOSE_WORKERS", "2"))


def _unavailable(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def engine():
    try:
        docker = DockerEngine().ensure()
    except DockerUnavailable as exc:
        _unavailable(str(exc))
    yield docker
    docker.stop()


@pytest.fixture(scope="module")
def images(engine) -> dict[str, str]:
    started = time.monotonic()
    try:
        tags = build_standins()
    except DockerUnavailable as exc:
        _unavailable(str(exc))
    FIGURES["standins_s"] = round(time.monotonic() - started, 1)
    FIGURES["image_build_s"] = round(build_project_image(IMAGE, tags["airflow"]), 1)
    FIGURES["workers"] = f"{WORKERS}+{WORKERS}"
    FIGURES["image_size_gb"] = round(
        int(run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE]).stdout) / 1e9, 2
    )
    return tags


def _secrets() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW_API_SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_hex(12),
        "FLOWER_BASIC_AUTH": f"flower:{secrets.token_hex(12)}",
    }


def _wait_healthy(project: ComposeProject, timeout: float = 900) -> list[dict]:
    """Every long-running container healthy and airflow-init exited 0; fails on an exited one."""
    deadline = time.monotonic() + timeout
    while True:
        rows = project.containers()
        by_service: dict[str, list[dict]] = {}
        for row in rows:
            by_service.setdefault(row["Service"], []).append(row)
        init = by_service.get("airflow-init", [])
        if any(r["State"] == "exited" and r.get("ExitCode") for r in init):
            logs = project("logs", "--no-color", "airflow-init", check=False).stdout[-3000:]
            pytest.fail(f"airflow-init failed:\n{logs}")
        for service, rs in by_service.items():
            if service != "airflow-init" and any(r["State"] in ("exited", "dead") for r in rs):
                logs = project("logs", "--no-color", "--tail", "60", service, check=False).stdout
                pytest.fail(f"{service} exited:\n{logs}")
        healthy = all(
            by_service.get(s) and all(r.get("Health") == "healthy" for r in by_service[s]) for s in SERVICES
        )
        if healthy and init and all(r["State"] == "exited" for r in init):
            return rows
        if time.monotonic() > deadline:
            state = {r["Name"]: f"{r['State']}/{r.get('Health')}" for r in rows}
            pytest.fail(f"not every service healthy after {timeout:.0f} s: {state}")
        time.sleep(5)


@pytest.fixture(scope="module")
def stack(images):
    env = {
        **_secrets(),
        "CRYPTO_ML_IMAGE": IMAGE,
        "CRYPTO_ML_TEST_POSTGRES_IMAGE": images["postgres"],
        "CRYPTO_ML_TEST_REDIS_IMAGE": images["redis"],
    }
    project = ComposeProject(f"cmltest{secrets.token_hex(3)}", OVERRIDE, env)
    started = time.monotonic()
    try:
        project("up", "-d", "--scale", f"airflow-worker={WORKERS}", "--scale", f"crypto_worker={WORKERS}")
        project.rows = _wait_healthy(project)
        FIGURES["up_to_healthy_s"] = round(time.monotonic() - started, 1)
        yield project
    finally:
        if os.environ.get("CRYPTO_ML_TEST_KEEP_COMPOSE") != "1":
            project.down()
        print(f"\n[compose] figures: {json.dumps(FIGURES)}")
        if os.environ.get("CRYPTO_ML_TEST_FIGURES"):
            with open(os.environ["CRYPTO_ML_TEST_FIGURES"], "w") as f:
                json.dump(FIGURES, f, indent=2)


def _container(project: ComposeProject, service: str) -> str:
    return next(r["Name"] for r in project.rows if r["Service"] == service)


def _psql(project: ComposeProject, sql: str) -> str:
    return project(
        "exec", "-T", "postgres", "psql", "-U", "airflow", "-d", "crypto_ml", "-At", "-c", sql
    ).stdout.strip()


def _memory_mb(project: ComposeProject) -> float:
    names = [r["Name"] for r in project.containers() if r["State"] == "running"]
    out = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *names]).stdout.split("\n")
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    total = 0.0
    for line in filter(None, out):
        used = line.split("/")[0].strip()
        for unit, factor in units.items():
            if used.endswith(unit):
                total += float(used[: -len(unit)]) * factor
    return total


def _scheduled_run(client, timeout: float = 120) -> str:
    """The run that unpausing the master starts at once (the compose header says so)."""
    from crypto_ml.stack.follow import MASTER

    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in client.dag_runs(MASTER) if r["run_type"] == "scheduled"]
        if runs:
            return runs[0]["dag_run_id"]
        assert time.monotonic() < deadline, (
            f"unpausing {MASTER} started no scheduled run within {timeout:.0f} s"
        )
        time.sleep(2)


def test_compose_stack_runs_the_daily_pipeline(stack):
    """The compose header's steps: unpause crypto_ml_coin, then crypto_ml_master, whose latest
    scheduled run starts at once; it ends in success with one prediction per coin."""
    from crypto_ml.stack.follow import COIN, MASTER, AirflowClient

    api = f"http://{stack.address(_container(stack, 'airflow-apiserver'))}:8080"
    client = AirflowClient(api, credentials=("admin", stack.env["AIRFLOW_ADMIN_PASSWORD"]))
    client.wait_for_dags([MASTER, COIN], timeout=300)
    paused = client.paused()
    assert paused[MASTER] and paused[COIN], (
        f"the DAGs must start paused (the compose header says so): {paused}"
    )
    started = time.monotonic()
    client.unpause((COIN, MASTER))
    run_id = _scheduled_run(client)
    state = client.wait_for_run(MASTER, run_id, timeout=1500)
    FIGURES["master_run_s"] = round(time.monotonic() - started, 1)
    FIGURES["memory_mb_after_run"] = round(_memory_mb(stack))
    assert state == "success", f"{MASTER} {run_id} ended {state}"

    polled = client.xcom(MASTER, run_id, "poll_new_data")
    day = polled["history_day"]
    transformed = {
        ti["dag_run_id"].split("__")[0]
        for ti in client.task_instances(COIN)
        if ti["dag_run_id"].endswith(f"__{day}") and ti["task_id"] == "transform" and ti["state"] == "success"
    }
    rows = _psql(stack, f"SELECT coin, count(*) FROM predictions WHERE as_of = '{day}' GROUP BY coin")
    counts = dict(line.split("|") for line in rows.splitlines())
    assert len(transformed) >= 80 and set(counts) == transformed, (
        f"predicted {sorted(counts)}, transformed {sorted(transformed)} of {len(polled['coins'])} polled"
    )
    assert set(counts.values()) == {"1"}, f"a coin predicted more than once: {counts}"
    FIGURES["coins"] = len(counts)

    flower = f"http://{stack.address(_container(stack, 'flower'))}:5555"
    user, password = stack.env["FLOWER_BASIC_AUTH"].split(":", 1)
    workers = requests.get(
        f"{flower}/api/workers", auth=(user, password), params={"refresh": "true"}, timeout=30
    ).json()
    processed = {
        name: sum((info.get("stats") or {}).get("total", {}).values())
        for name, info in workers.items()
        if name.startswith("engine@")
    }
    assert len(processed) == WORKERS and all(n > 0 for n in processed.values()), (
        f"engine workers' tasks: {processed}"
    )
    FIGURES["engine_tasks"] = processed


def test_down_leaves_nothing(stack):
    stack.down()
    left = stack.leftovers()
    assert left == {"container": [], "network": [], "volume": []}, f"left behind: {left}"

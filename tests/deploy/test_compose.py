"""docker-compose.yaml, checked structurally (no Docker engine runs in the test environment).

Every service has an image, a command (or the image's), env and a healthcheck; both worker kinds
scale with ``--scale``; every secret comes from ``${VAR:?...}`` interpolation; start order follows
health conditions; every Airflow process shares the four settings CeleryExecutor needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"

AIRFLOW = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
WORKERS = ["airflow-worker", "crypto_worker"]
SHARED = [
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
]
REQUIRED_VAR = re.compile(r"\$\{(\w+):\?[^}]+\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _command(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_every_component_is_a_service(services):
    assert set(services) == {"postgres", "redis", "airflow-init", *AIRFLOW, "crypto_worker", "flower"}
    for name, svc in services.items():
        assert svc.get("image"), name
        assert svc.get("environment"), name
        if name == "airflow-init":  # a one-shot: the others wait for it to complete, not for health
            assert "healthcheck" not in svc and svc["restart"] == "no"
            continue
        hc = svc.get("healthcheck") or {}
        assert hc.get("test") and hc.get("interval") and hc.get("retries"), name
    assert services["postgres"]["image"].startswith("postgres:17.")
    assert services["redis"]["image"].startswith("redis:7.")
    ours = {svc["image"] for name, svc in services.items() if name not in ("postgres", "redis")}
    assert ours == {"${CRYPTO_ML_IMAGE:-crypto-ml:0.1.0}"}, ours


def test_commands(services):
    expected = {
        "airflow-apiserver": "airflow api-server",
        "airflow-scheduler": "airflow scheduler",
        "airflow-dag-processor": "airflow dag-processor",
        "airflow-triggerer": "airflow triggerer",
        "airflow-worker": "airflow celery worker",
        "crypto_worker": "python -m celery -A crypto_ml worker -Q predict,train,heavy",
        "flower": "python -m celery -A crypto_ml flower",
    }
    for name, prefix in expected.items():
        assert _command(services[name]).startswith(prefix), (name, _command(services[name]))
    init = _command(services["airflow-init"])
    assert "airflow db migrate" in init and "crypto-ml db upgrade" in init


def test_commands_survive_the_official_entrypoint(services):
    """Every service on the project's image runs what it means to under the official image's
    entrypoint rules (a bare `celery ...` would run as `airflow celery ...` and exit 2)."""
    from tests.helpers.entrypoint import survives

    ours = {n: s for n, s in services.items() if n not in ("postgres", "redis")}
    for name, svc in ours.items():
        assert "entrypoint" not in svc, f"{name}: keep the image's entrypoint (dumb-init, its checks)"
        cmd = svc["command"] if isinstance(svc["command"], list) else svc["command"].split()
        assert survives(None, cmd) is None, f"{name}: {survives(None, cmd)}"


def test_published_on_localhost_only_by_default(services):
    published = {n: s["ports"] for n, s in services.items() if s.get("ports")}
    assert set(published) == {"airflow-apiserver", "flower"}, published
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("${CRYPTO_ML_PUBLISH_ADDRESS:-127.0.0.1}:"), (name, port)


def test_health_checks_are_cheap(services):
    """No probe imports Airflow (3-4 CPU-s each, tens of seconds on a loaded 2-core host)."""
    for name, svc in services.items():
        test = svc.get("healthcheck", {}).get("test")
        if not test:
            continue
        words = test[1:] if isinstance(test, list) else test.split()
        if words[:1] == ["CMD-SHELL"] or (isinstance(test, list) and test[0] == "CMD-SHELL"):
            words = " ".join(words).split()
        program = words[0] if words[0] != "python" else " ".join(words[:3])
        assert program not in ("airflow", "celery", "python -m celery"), (name, test)


def test_both_worker_kinds_scale(services):
    for name in WORKERS:
        svc = services[name]
        assert "container_name" not in svc, name
        assert "ports" not in svc, f"{name}: a fixed host port stops --scale"
        assert "hostname" not in svc, name
        assert svc.get("deploy", {}).get("replicas", 1) >= 1
    # Only the UIs publish ports.
    published = {n for n, s in services.items() if s.get("ports")}
    assert published == {"airflow-apiserver", "flower"}
    # Engine workers get unique node names (engine@<container hostname>) and their healthcheck
    # pings exactly that name (crypto_ml.stack.probe: engine@<this host>).
    assert "engine@%h" in _command(services["crypto_worker"])
    assert services["crypto_worker"]["healthcheck"]["test"][-2:] == ["celery-worker", "engine"]
    # Every engine worker, on any host, sees every trained model: they live in the project
    # database (or object storage), so no volume is shared for them.
    assert (
        services["crypto_worker"]["environment"]["CRYPTO_ML_MODEL_STORE_URL"]
        == "${CRYPTO_ML_MODEL_STORE_URL:-database}"
    )
    for name, svc in services.items():
        assert not any("crypto_ml" in str(v) for v in svc.get("volumes", [])), name


def test_trading_endpoint_is_wired_apart_from_the_engine_broker(services, compose):
    """CRYPTO_ML_BROKER_URL is the engine's Redis broker; the order endpoint and every trading
    setting are CRYPTO_ML_TRADING_*, on the Airflow services only (they place orders)."""
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "CRYPTO_ML_BROKER_URL" in env:
            assert env["CRYPTO_ML_BROKER_URL"].startswith("redis://") and env[
                "CRYPTO_ML_BROKER_URL"
            ].endswith("/1"), name
        assert not {"CRYPTO_ML_BROKER", "CRYPTO_ML_LIVE_TRADING", "CRYPTO_ML_BROKER_DRY_RUN"} & set(env), name
        trading = {k for k in env if k.startswith("CRYPTO_ML_TRADING_")}
        if name in AIRFLOW:
            assert trading == {
                "CRYPTO_ML_TRADING_BROKER",
                "CRYPTO_ML_TRADING_URL",
                "CRYPTO_ML_TRADING_DRY_RUN",
                "CRYPTO_ML_TRADING_LIVE",
                "CRYPTO_ML_TRADING_TOKEN",
            }, name
            assert env["CRYPTO_ML_TRADING_URL"] == "${CRYPTO_ML_TRADING_URL:-}", name
            assert env["CRYPTO_ML_TRADING_DRY_RUN"] == "${CRYPTO_ML_TRADING_DRY_RUN:-1}", name
        elif name in ("crypto_worker", "flower"):
            assert not trading, name
    assert "crypto-ml-home" not in (compose.get("volumes") or {})


def test_celery_executor_and_shared_settings(services):
    envs = {name: services[name]["environment"] for name in AIRFLOW + ["airflow-init"]}
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "CRYPTO_ML_DATABASE_URL" in env and "CRYPTO_ML_BROKER_URL" in env, name
        assert "FabAuthManager" in env["AIRFLOW__CORE__AUTH_MANAGER"], name
    for key in SHARED:
        values = {name: env.get(key) for name, env in envs.items()}
        assert None not in values.values() and len(set(values.values())) == 1, (key, values)
    assert (
        envs["airflow-scheduler"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        == "http://airflow-apiserver:8080/execution/"
    )
    # The engine and Airflow tasks talk to the same engine broker and result store.
    for key in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND"):
        assert services["crypto_worker"]["environment"][key] == envs["airflow-worker"][key]
        assert services["flower"]["environment"][key] == envs["airflow-worker"][key]
    assert (
        services["crypto_worker"]["environment"]["CRYPTO_ML_DATABASE_URL"]
        == envs["airflow-worker"]["CRYPTO_ML_DATABASE_URL"]
    )


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, node


def test_secrets_only_from_required_env_interpolation(compose):
    secret_words = ("PASSWORD", "SECRET", "FERNET", "BASIC_AUTH", "REDISCLI_AUTH")
    for path, value in _walk(compose):
        key = path.rsplit(".", 1)[-1].upper()
        text = str(value)
        if any(w in key for w in secret_words) and "AUTH_MANAGER" not in key and "USERNAME" not in key:
            assert REQUIRED_VAR.fullmatch(text), f"{path} = {text!r}: a secret must be ${{VAR:?message}}"
        # A URL with credentials carries them only as a required variable.
        for creds in re.findall(r"://([^@/\s]*)@", text):
            user, _, password = creds.partition(":")
            assert REQUIRED_VAR.fullmatch(password), f"{path}: literal credentials in {text!r}"
    for required in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "FLOWER_BASIC_AUTH",
        "AIRFLOW_ADMIN_PASSWORD",
    ):
        assert f"${{{required}:?" in COMPOSE.read_text(), required


def test_start_order_follows_health(services):
    for name in AIRFLOW + ["crypto_worker"]:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["airflow-init"]["restart"] == "no"

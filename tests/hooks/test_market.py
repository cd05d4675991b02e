"""The ``crypto_ml_market`` Connection: its own type in the UI's connection form, read by the hook
from the environment (Airflow's ``AIRFLOW_CONN_*``), tested against a live (local) exchange."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

from crypto_ml.hooks.market import CryptoMarketHook
from crypto_ml.markets import ENV_VAR
from crypto_ml.testing.fake_exchange import FakeExchange, FakeMarket

#: The api-server app, as ``airflow api-server`` builds it; what the UI's connection form asks.
HOOK_META = r"""
import json
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

client = TestClient(create_app())
token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
meta = client.get("/ui/connections/hook_meta", headers={"Authorization": f"Bearer {token}"})
print("RESULT=" + json.dumps([m for m in meta.json() if m["connection_type"] == "crypto_ml_market"]))
"""


def test_the_connection_form_offers_the_market_type(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [sys.executable, "-c", HOOK_META], env=env, capture_output=True, text=True, timeout=300
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT=")]
    assert line, out.stdout[-2000:] + out.stderr[-3000:]
    [meta] = json.loads(line[0][len("RESULT=") :])
    assert meta["hook_name"] == "Crypto-ML market"
    fields = meta["standard_fields"]
    assert fields["host"]["title"] == "Market (replay, csv, or a ccxt exchange id)"
    assert fields["host"]["placeholder"] == "binance"
    assert fields["password"]["hidden"] and fields["login"]["hidden"]
    extra = meta["extra_fields"]
    assert {"symbols", "top", "quote", "path", "start", "api_url"} <= set(extra)
    assert extra["top"]["schema"]["title"] == "Top N" and extra["quote"]["value"] == "USDT"


def test_the_hook_reads_the_connection_and_tests_it_against_the_exchange(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert CryptoMarketHook().get_market().kind == "replay"  # no Connection: the default
    assert CryptoMarketHook().test_connection() == (
        True,
        "replay of the bundled 2013-2017 history; no network needed",
    )
    with FakeExchange([FakeMarket("BTC", first=dt.date(2026, 1, 1))]) as ex:
        monkeypatch.setenv(
            ENV_VAR,
            json.dumps(
                {
                    "conn_type": "crypto_ml_market",
                    "host": "binance",
                    "extra": {"symbols": "BTC/USDT,XYZ/USDT", "api_url": ex.api_url},
                }
            ),
        )
        market = CryptoMarketHook().get_market()
        assert (market.exchange, market.symbols) == ("binance", ("BTC/USDT", "XYZ/USDT"))
        assert market.origin == ENV_VAR  # read from the variable's text, the CLI's and the parser's way
        ok, text = CryptoMarketHook().test_connection()
        assert not ok and "1 markets" in text and "xyz-usdt (XYZ/USDT) on binance: unknown symbol" in text

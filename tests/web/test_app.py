"""The web view against real databases filled through the storage layer (FastAPI TestClient)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi import Depends, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from crypto_ml import storage
from crypto_ml.web import LazyASGIApp, create_app
from tests.helpers.web_data import EVIL, START, fill


@pytest.fixture
def filled(sqlite_url) -> str:
    fill(sqlite_url)
    return sqlite_url


@pytest.fixture
def client(filled) -> TestClient:
    return TestClient(create_app(filled))


def rows(page: str, table: str) -> list[str]:
    """The body rows of the page's table ``id=table`` (``predictions``, ``trades``, ``ranked``, ...)."""
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S)[1]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_page_lists_predictions_and_trades_newest_first(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    predictions = rows(r.text, "predictions")
    assert [re.search(r'<td class="d">(\d{4}-\d\d-\d\d)</td>', row)[1] for row in predictions] == [
        "2024-04-20", "2024-04-10", "2024-03-31", "2024-03-21", "2024-02-20",
    ]  # fmt: skip
    newest = predictions[0]
    assert "<td>bitcoin</td><td>lstm</td>" in newest and ">7<" in newest and "no trade request" in newest
    traded = predictions[1]
    assert "buy" in traded and "filled" in traded and "+2.00%" in traded  # forecast = 1.02 x close
    eth = predictions[2]
    assert "sell" in eth and "rejected" in eth and "-5.00%" in eth
    trades = rows(r.text, "trades")
    assert len(trades) == 3
    assert "btc-100" in trades[0] and "eth-90" in trades[1]
    # the plot of every coin on the page (HTML payload coin url-encoded)
    assert 'src="plot.png?coin=bitcoin"' in r.text and 'src="plot.png?coin=ethereum"' in r.text
    assert "plot.png?coin=%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E" in r.text
    # relative links resolve against where the app is mounted
    assert '<base href="/">' in r.text


def test_coin_filter_and_limit(client):
    r = client.get("/", params={"coin": "bitcoin", "limit": 2})
    assert r.status_code == 200
    predictions = rows(r.text, "predictions")
    assert len(predictions) == 2 and all("<td>bitcoin</td>" in row for row in predictions)
    assert "ethereum</td>" not in r.text
    assert '<option value="bitcoin" selected>' in r.text
    assert r.text.count("<img ") == 1
    assert client.get("/", params={"limit": 0}).status_code == 422
    unknown = client.get("/", params={"coin": "dogecoin"})
    assert unknown.status_code == 200
    assert "No predictions or trade requests for <b>dogecoin</b>" in unknown.text


def test_everything_is_html_escaped(client):
    r = client.get("/")
    page = r.text
    assert EVIL not in page and "<b>naive</b>" not in page and "<i>b</i>" not in page
    assert "<img src=x" not in page and "<k>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;naive&lt;/b&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # the only script-ish tags are none at all
    assert "<script" not in page.lower()
    filtered = client.get("/", params={"coin": EVIL})
    assert filtered.status_code == 200 and EVIL not in filtered.text
    assert len(rows(filtered.text, "predictions")) == 1


def test_page_shows_no_secrets(filled, client):
    page = client.get("/").text
    assert "hunter2" not in page and "order_id" not in page  # broker responses are not shown
    database = make_url(filled).database
    assert database not in page and "sqlite:///" not in page
    assert "Project database: sqlite, given to the app" in page


def png_pixels(png: bytes):
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def test_plot_is_a_png_with_closes_forecasts_and_trades(client):
    r = client.get("/plot.png", params={"coin": "bitcoin"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(r.content) > 20_000  # an empty 1000x460 figure is ~5 KB
    pixels = png_pixels(r.content)
    assert pixels.shape[:2] == (460, 1000)
    colours = {tuple(p) for p in (pixels[..., :3].reshape(-1, 3) * 255).round().astype(int)}
    assert len(colours) > 100  # antialiased lines in several colours, not a blank canvas
    # the buy marker's green (#16a34a) is drawn
    assert any(abs(r_ - 0x16) < 6 and abs(g - 0xA3) < 6 and abs(b - 0x4A) < 6 for r_, g, b in colours)


def test_plot_without_prices_and_with_html_coin(client):
    eth = client.get("/plot.png", params={"coin": "ethereum"})
    assert eth.status_code == 200 and eth.content[:8] == b"\x89PNG\r\n\x1a\n"
    evil = client.get("/plot.png", params={"coin": EVIL})
    assert evil.status_code == 200 and evil.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_unknown_coin_is_404(client):
    r = client.get("/plot.png", params={"coin": "dogecoin"})
    assert r.status_code == 404
    assert r.json() == {
        "detail": "Unknown coin 'dogecoin': no prices, predictions or trade requests are stored for it."
    }
    assert client.get("/plot.png").status_code == 422  # coin is required


def test_json_endpoints(client):
    data = client.get("/api/predictions", params={"limit": 3}).json()
    assert data["count"] == 3
    first, second = data["predictions"][:2]
    assert (first["coin"], first["as_of"], first["model"], first["version"], first["horizon"]) == (
        "bitcoin", "2024-04-20", "lstm", 2, 7,
    )  # fmt: skip
    assert first["trade"] is None and len(first["values"]) == 7 and first["run_id"] == "run-110"
    assert second["trade"]["status"] == "filled" and second["trade"]["side"] == "buy"
    assert second["expected_return"] == pytest.approx(0.02)
    assert "response" not in second["trade"]
    eth = client.get("/api/predictions", params={"coin": "ethereum"}).json()
    assert eth["count"] == 1 and eth["predictions"][0]["trade"]["status"] == "rejected"
    trades = client.get("/api/trades").json()
    assert [t["idempotency_key"] for t in trades["trades"]] == ["btc-100", "eth-90", "<k>"]
    assert all("response" not in t for t in trades["trades"])
    assert "hunter2" not in client.get("/api/trades").text


def test_empty_database_gets_a_friendly_page(sqlite_url):
    path = Path(make_url(sqlite_url).database)
    client = TestClient(create_app(sqlite_url))
    r = client.get("/")  # no database file at all
    assert r.status_code == 200 and "No predictions yet — run the pipeline" in r.text
    assert not path.exists()  # a read-only view does not create it
    assert "Project database: sqlite, given to the app" in r.text and str(path) not in r.text
    assert client.get("/api/predictions").json() == {"predictions": [], "count": 0}
    assert client.get("/plot.png", params={"coin": "bitcoin"}).status_code == 404
    storage.migrate(sqlite_url)  # schema, no rows
    r = client.get("/")
    assert r.status_code == 200 and "No predictions yet — run the pipeline" in r.text
    assert "<table" not in r.text
    assert client.get("/plot.png", params={"coin": "bitcoin"}).status_code == 404


def test_prices_only_coin_plots_but_the_page_is_still_empty(sqlite_url):
    storage.migrate(sqlite_url)
    dates = pd.date_range(START, periods=30, freq="D")
    frame = pd.DataFrame({"coin": "solana", "date": dates, "open": 1.0, "high": 1.0, "low": 1.0,
                          "close": np.linspace(100, 130, 30), "volume": 1.0, "market_cap": 1.0})  # fmt: skip
    storage.store_prices(frame, source="test", url=sqlite_url)
    client = TestClient(create_app(sqlite_url))
    assert "No predictions yet" in client.get("/").text
    r = client.get("/plot.png", params={"coin": "solana"})
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_dependencies_guard_every_route(filled):
    def deny():
        raise HTTPException(401, "Not authenticated")

    client = TestClient(create_app(filled, dependencies=[Depends(deny)]))
    for path in ("/", "/plot.png?coin=bitcoin", "/api/predictions", "/api/trades"):
        assert client.get(path).status_code == 401, path
    # and there is no unguarded OpenAPI/docs surface
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code in (401, 404), path


def test_lazy_app_is_built_on_first_request(filled):
    lazy = LazyASGIApp("crypto_ml.web.app:create_app", url=filled)
    assert "not built yet" in repr(lazy)
    with TestClient(lazy) as client:
        assert client.get("/api/trades").json()["count"] == 3
    assert "(built)" in repr(lazy)
    first = lazy.build()
    assert lazy.build() is first
    with pytest.raises(ValueError, match="module:callable"):
        LazyASGIApp("crypto_ml.web.app.create_app")


@pytest.mark.postgres
def test_page_plot_and_json_on_postgres(pg_url):
    fill(pg_url)
    client = TestClient(create_app(pg_url))
    r = client.get("/")
    assert r.status_code == 200
    assert len(rows(r.text, "predictions")) == 5 and len(rows(r.text, "trades")) == 3
    assert EVIL not in r.text and "&lt;script&gt;" in r.text
    assert "Project database: postgresql, given to the app" in r.text
    url = make_url(pg_url)
    assert url.database not in r.text and (url.host or "127.0.0.1") not in r.text
    second = client.get("/api/predictions", params={"limit": 2}).json()["predictions"][1]
    assert second["trade"]["status"] == "filled"
    png = client.get("/plot.png", params={"coin": "bitcoin"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n" and len(png.content) > 20_000
    assert client.get("/plot.png", params={"coin": "dogecoin"}).status_code == 404

"""HTTP broker against a real local exchange-like server on 127.0.0.1 (nothing mocked)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crypto_ml.trading.brokers import (
    BrokerError,
    HTTPBroker,
    LiveTradingNotEnabled,
    OrderRequest,
    PaperBroker,
    broker_from_config,
)


@pytest.fixture(autouse=True)
def _promotion_gate_off(monkeypatch):
    """These tests are about orders and limits; only a promoted version trades, which
    test_promotion_gate.py tests."""
    monkeypatch.setenv("CRYPTO_ML_PROMOTION_REQUIRED", "0")


class Exchange:
    """Stores orders by idempotency key; ``script`` holds canned answers for the next POSTs."""

    def __init__(self):
        self.requests: list[dict] = []
        self.orders: dict[str, dict] = {}
        self.script: list[dict] = []
        self.positions = {
            "btc": {"quantity": 1.5, "avg_price": 100.0},
            "eth": {"quantity": -2, "avg_price": 10.0},
        }
        self.lock = threading.Lock()


def make_handler(ex: Exchange):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status, payload, headers=None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with ex.lock:
                ex.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers), "t": time.monotonic()}
                )
            self._send(200, ex.positions)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("Idempotency-Key")
            with ex.lock:
                ex.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "t": time.monotonic(),
                    }
                )
                step = ex.script.pop(0) if ex.script else {}
                if step.get("status", 200) < 300 or step.get("store"):
                    duplicate = key in ex.orders
                    if not duplicate:
                        ex.orders[key] = {
                            "order_id": f"ex-{len(ex.orders) + 1}",
                            "status": "filled",
                            "filled_qty": body["quantity"],
                            "fill_price": body["price"],
                        }
                    answer = {**ex.orders[key], "duplicate": duplicate}
            if step.get("sleep"):
                time.sleep(step["sleep"])
            if step.get("status", 200) >= 300:
                self._send(step["status"], step.get("body", {"error": "scripted"}), step.get("headers"))
            else:
                self._send(200, answer)

    return Handler


@pytest.fixture
def exchange():
    ex = Exchange()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(ex))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    ex.url = f"http://127.0.0.1:{server.server_address[1]}/orders"
    yield ex
    server.shutdown()
    server.server_close()


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv("CRYPTO_ML_TRADING_LIVE", "1")
    monkeypatch.delenv("CRYPTO_ML_TRADING_TOKEN", raising=False)


ORDER = OrderRequest(
    idempotency_key="cml-abc", coin="btc", side="buy", quantity=0.5, price=40000.0, as_of="2024-03-01"
)
BODY = {
    "idempotency_key": "cml-abc",
    "coin": "btc",
    "side": "buy",
    "quantity": 0.5,
    "price": 40000.0,
    "as_of": "2024-03-01",
}


def test_dry_run_is_the_default_and_sends_nothing(exchange, monkeypatch):
    monkeypatch.setenv("CRYPTO_ML_TRADING_LIVE", "1")  # not enough on its own
    broker = HTTPBroker(exchange.url)
    res = broker.place_order(ORDER)
    assert (res.status, res.order_id, res.filled_qty, res.duplicate) == ("dry_run", None, 0.0, False)
    assert res.raw["body"] == BODY
    assert broker.position("btc") == 0.0 and broker.total_notional() == 0.0
    assert exchange.requests == []


def test_live_needs_the_env_var(exchange, monkeypatch):
    monkeypatch.delenv("CRYPTO_ML_TRADING_LIVE", raising=False)
    with pytest.raises(
        LiveTradingNotEnabled, match="live trading needs CRYPTO_ML_TRADING_LIVE=1 and dry_run=False"
    ):
        HTTPBroker(exchange.url, dry_run=False)
    monkeypatch.setenv("CRYPTO_ML_TRADING_LIVE", "1")
    broker = HTTPBroker(exchange.url, dry_run=False)
    monkeypatch.setenv("CRYPTO_ML_TRADING_LIVE", "0")  # switched off after construction: still refused
    with pytest.raises(LiveTradingNotEnabled):
        broker.place_order(ORDER)
    assert exchange.requests == []


def test_live_order_sends_key_and_token_and_retried_key_returns_same_order(exchange, live):
    broker = HTTPBroker(exchange.url, dry_run=False, token="s3cret", backoff=0)
    first = broker.place_order(ORDER)
    again = broker.place_order(ORDER)
    assert (first.status, first.order_id, first.filled_qty, first.fill_price, first.duplicate) == (
        "filled",
        "ex-1",
        0.5,
        40000.0,
        False,
    )
    assert (again.order_id, again.duplicate) == ("ex-1", True)
    assert len(exchange.orders) == 1
    req = exchange.requests[0]
    assert req["headers"]["Idempotency-Key"] == "cml-abc"
    assert req["headers"]["Authorization"] == "Bearer s3cret"
    assert req["body"] == BODY
    assert "s3cret" not in repr(broker)


def test_token_from_env(exchange, live, monkeypatch):
    monkeypatch.setenv("CRYPTO_ML_TRADING_TOKEN", "from-env")
    HTTPBroker(exchange.url, dry_run=False).place_order(ORDER)
    assert exchange.requests[0]["headers"]["Authorization"] == "Bearer from-env"


def test_no_token_no_authorization_header(exchange, live):
    HTTPBroker(exchange.url, dry_run=False).place_order(ORDER)
    assert "Authorization" not in exchange.requests[0]["headers"]


def test_503_then_success_is_retried_without_a_second_order(exchange, live):
    # The first answer is lost (503) after the exchange stored the order: the retry gets it back.
    exchange.script = [{"status": 503, "store": True}]
    res = HTTPBroker(exchange.url, dry_run=False, backoff=0.01).place_order(ORDER)
    assert [r["method"] for r in exchange.requests] == ["POST", "POST"]
    assert {r["headers"]["Idempotency-Key"] for r in exchange.requests} == {"cml-abc"}
    assert (res.status, res.order_id, res.duplicate) == ("filled", "ex-1", True)
    assert len(exchange.orders) == 1


def test_429_retry_after_is_honoured(exchange, live):
    exchange.script = [{"status": 429, "headers": {"Retry-After": "1"}, "body": {"error": "slow down"}}]
    res = HTTPBroker(exchange.url, dry_run=False, backoff=0).place_order(ORDER)
    assert res.status == "filled" and res.duplicate is False
    assert len(exchange.requests) == 2
    assert exchange.requests[1]["t"] - exchange.requests[0]["t"] >= 0.95


def test_400_is_rejected_without_retry(exchange, live):
    exchange.script = [{"status": 400, "body": {"error": "insufficient funds"}}]
    res = HTTPBroker(exchange.url, dry_run=False, backoff=0).place_order(ORDER)
    assert res.status == "rejected"
    assert res.reason == "HTTP 400: insufficient funds"
    assert res.raw["http_status"] == 400
    assert len(exchange.requests) == 1 and exchange.orders == {}


def test_persistent_5xx_is_an_error_after_retries(exchange, live):
    exchange.script = [{"status": 502}] * 3
    with pytest.raises(BrokerError, match=r"still failing after 2 retries: HTTP 502 scripted"):
        HTTPBroker(exchange.url, dry_run=False, retries=2, backoff=0).place_order(ORDER)
    assert len(exchange.requests) == 3


def test_timeout_is_a_clear_error_after_retries(exchange, live):
    exchange.script = [{"sleep": 0.6}] * 3
    broker = HTTPBroker(exchange.url, dry_run=False, timeout=0.2, retries=2, backoff=0, token="s3cret")
    with pytest.raises(BrokerError, match=r"POST .*/orders \(key cml-abc\) failed after 2 retries") as info:
        broker.place_order(ORDER)
    assert "s3cret" not in str(info.value)
    time.sleep(0.7)  # let the slow handlers finish
    assert len(exchange.requests) == 3
    assert len(exchange.orders) == 1  # the exchange stored it once, whatever the client saw


def test_unreachable_endpoint_is_a_clear_error(live):
    broker = HTTPBroker("http://127.0.0.1:9/orders", dry_run=False, retries=1, backoff=0, timeout=1)
    with pytest.raises(BrokerError, match="failed after 1 retries"):
        broker.place_order(ORDER)


def test_positions(exchange, live):
    broker = HTTPBroker(exchange.url, dry_run=False, token="t")
    assert broker.position("btc") == 1.5
    assert broker.position("eth") == -2.0
    assert broker.position("doge") == 0.0
    assert broker.total_notional() == pytest.approx(170.0)
    assert exchange.requests[0]["path"] == "/orders/positions"
    assert exchange.requests[0]["headers"]["Authorization"] == "Bearer t"
    exchange.positions = {"btc": 1.5}
    assert broker.position("btc") == 1.5
    with pytest.raises(BrokerError, match="avg_price"):
        broker.total_notional()


def test_broker_from_config(monkeypatch, exchange):
    for var in (
        "CRYPTO_ML_TRADING_BROKER",
        "CRYPTO_ML_TRADING_URL",
        "CRYPTO_ML_TRADING_DRY_RUN",
        "CRYPTO_ML_TRADING_LIVE",
        "CRYPTO_ML_BROKER",
        "CRYPTO_ML_LIVE_TRADING",
        "CRYPTO_ML_BROKER_DRY_RUN",
        "CRYPTO_ML_BROKER_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    # The engine's Celery broker never becomes the order endpoint.
    monkeypatch.setenv("CRYPTO_ML_BROKER_URL", "redis://127.0.0.1:6379/1")
    assert isinstance(broker_from_config(), PaperBroker)
    assert broker_from_config(url="sqlite:///x.db").url == "sqlite:///x.db"
    monkeypatch.setenv("CRYPTO_ML_TRADING_BROKER", "http")
    with pytest.raises(ValueError, match="CRYPTO_ML_TRADING_URL"):
        broker_from_config()
    monkeypatch.setenv("CRYPTO_ML_TRADING_URL", exchange.url)
    broker = broker_from_config()
    assert isinstance(broker, HTTPBroker) and broker.dry_run and broker.endpoint == exchange.url
    monkeypatch.setenv("CRYPTO_ML_TRADING_DRY_RUN", "0")
    with pytest.raises(LiveTradingNotEnabled):
        broker_from_config()
    monkeypatch.setenv("CRYPTO_ML_TRADING_LIVE", "1")
    assert broker_from_config().dry_run is False
    assert isinstance(broker_from_config("paper"), PaperBroker)
    with pytest.raises(ValueError, match="unknown broker 'ftx'"):
        broker_from_config("ftx")
    # A trading setting under its old name is refused with the new one, never silently ignored.
    monkeypatch.setenv("CRYPTO_ML_BROKER", "http")
    with pytest.raises(ValueError, match="rename CRYPTO_ML_BROKER to CRYPTO_ML_TRADING_BROKER"):
        broker_from_config()


def test_live_account_spends_only_the_cash_the_fills_left(exchange, live, db_url):
    """The HTTP broker path goes through the same risk module: the cash is the capital minus what
    the endpoint reported filled; the positions are the endpoint's."""
    from crypto_ml.storage import get_trade_requests, migrate
    from crypto_ml.trading import TradingRules, handle_prediction

    migrate(db_url)
    broker = HTTPBroker(exchange.url, dry_run=False, backoff=0, ledger_url=db_url)
    exchange.positions = {}
    rules = TradingRules(capital=2500.0, max_total_notional=20000.0)
    out = []
    for day in range(1, 5):
        p = {
            "coin": "btc",
            "as_of": f"2024-03-0{day}",
            "model": "ar",
            "version": 1,
            "horizon": 10,
            "values": [105.0],
            "last_close": 100.0,
            "expected_return": 0.05,
        }
        out.append(handle_prediction(p, kill_switch=False, broker=broker, rules=rules, url=db_url))
    assert [r["status"] for r in out] == ["filled", "filled", "filled", "stored"]
    assert out[2]["quantity"] == pytest.approx(5.0) and "capped by the cash (500.00 USD)" in out[2]["reason"]
    assert "no cash to buy with" in out[3]["reason"]
    book = broker.account(2500.0, marks={"btc": 100.0})
    assert book.cash == pytest.approx(0.0, abs=1e-6) and book.positions == {}
    assert len(get_trade_requests(url=db_url)) == 3

"""What every fake exchange server shares: a threaded HTTP server on 127.0.0.1 (a free port),
started and stopped as a context manager, a clock that follows the wall clock unless set, a
per-path request count, and JSON answers. Each exchange shape (``fake_exchange``: Binance,
``fake_kraken``: Kraken) subclasses :class:`FakeServer` and :class:`FakeHandler` and says only
what differs: its paths, its answers, its limits."""

from __future__ import annotations

import collections
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeHandler(BaseHTTPRequestHandler):
    """Counts each request by path, then calls :meth:`answer` with the path and its query."""

    exchange: FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.exchange._lock:
            self.exchange.requests[parts.path] += 1
        self.answer(parts.path, params)

    def answer(self, path: str, params: dict[str, str]) -> None:
        raise NotImplementedError

    def _send(self, status: int, body, headers: dict | None = None) -> None:
        if isinstance(body, bytes):
            data, ctype = body, "application/json"
        elif isinstance(body, str):
            data, ctype = body.encode(), "text/html"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FakeServer:
    """The server; use as a context manager. ``today`` follows the wall clock unless set."""

    handler: type[FakeHandler] = FakeHandler

    def __init__(self, *, today: dt.date | None = None) -> None:
        self._today = today
        self.requests: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def today(self) -> dt.date:
        return self._today or dt.datetime.now(dt.UTC).date()

    @today.setter
    def today(self, day: dt.date | None) -> None:
        self._today = day

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        handler = type("Handler", (self.handler,), {"exchange": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

"""crypto_ml.utils.http.retrying_session against a real local HTTP server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crypto_ml.utils.http import retrying_session


@pytest.fixture
def server():
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            calls.append(self.path)
            status = 503 if len(calls) < 3 else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", calls
    httpd.shutdown()


def test_503_is_retried_until_it_succeeds(server):
    url, calls = server
    resp = retrying_session(retries=3, backoff=0, timeout=5).get(url + "/x")
    assert resp.status_code == 200 and len(calls) == 3


def test_out_of_retries_returns_the_last_answer(server):
    url, calls = server
    resp = retrying_session(retries=1, backoff=0, timeout=5).get(url + "/x")
    assert resp.status_code == 503 and len(calls) == 2


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="timeout must be > 0"):
        retrying_session(timeout=0)

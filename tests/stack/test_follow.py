"""The follow loop's pieces that need no running stack: the progress line as the README shows it,
and which failed calls the loop rides out (the stack tests follow real runs on both stacks)."""

from __future__ import annotations

import socket

import requests

from crypto_ml.stack.follow import AirflowClient, ApiError, progress_line, transient


def test_progress_line_is_the_one_in_the_readme():
    states = ["success"] * 45 + ["running"] * 40 + ["queued"] * 4
    assert progress_line("[pipeline]", "running", "2017-06-29", states) == (
        "[pipeline] crypto_ml_master: running; history day 2017-06-29: coin pipelines 45 succeeded, "
        "0 failed, 44 running or queued, of 89"
    )
    assert (
        progress_line("[stack]", "queued", None, []) == "[stack] crypto_ml_master: queued; polling new data"
    )


def test_passing_failures_are_retried_and_wrong_calls_are_not():
    assert transient(ConnectionRefusedError()) and transient(TimeoutError("timed out"))
    assert transient(requests.ConnectionError("refused")) and transient(requests.ReadTimeout("slow"))
    assert transient(ApiError("GET", "u", 503, "down"))
    assert not transient(ApiError("GET", "u", 404, "no such run"))
    assert not transient(ValueError("bad"))


def test_a_closed_port_fails_with_the_cause():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AirflowClient(f"http://127.0.0.1:{port}")
    try:
        client.health()
    except requests.ConnectionError as exc:
        assert isinstance(exc, OSError) and "refused" in str(exc).lower()
    else:
        raise AssertionError("health() answered on a closed port")


def test_error_answers_carry_code_and_detail_and_reads_are_retried():
    """A tiny real HTTP server: a 404 becomes ApiError with the answer's detail (a missing XCom is
    None), a 503 on a read is retried by the session and then succeeds."""
    import http.server
    import json
    import threading

    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            calls.append(self.path)
            if self.path.startswith("/auth/token"):
                code, body = 200, {"access_token": "t"}
            elif "xcomEntries" in self.path:
                code, body = 404, {"detail": "XCom entry not found"}
            elif self.path == "/api/v2/dags/flaky" and calls.count(self.path) == 1:
                code, body = 503, {"detail": "busy"}
            else:
                code, body = (
                    (200, {"dag_id": "flaky"})
                    if self.path.endswith("flaky")
                    else (404, {"detail": "no such DAG"})
                )
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = AirflowClient(f"http://127.0.0.1:{server.server_address[1]}")
        assert client.xcom("d", "r", "t") is None
        try:
            client.api("GET", "/api/v2/dags/nosuch")
        except ApiError as exc:
            assert exc.code == 404 and "no such DAG" in str(exc) and not transient(exc)
        else:
            raise AssertionError("a 404 answered without an error")
        assert client.api("GET", "/api/v2/dags/flaky") == {"dag_id": "flaky"}
        assert calls.count("/api/v2/dags/flaky") == 2  # the 503, then the retry
    finally:
        server.shutdown()

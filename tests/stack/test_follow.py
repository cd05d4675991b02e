"""The follow loop's pieces that need no running stack: the progress line as the README shows it,
and which failed calls the loop rides out (the stack tests follow real runs on both stacks)."""

from __future__ import annotations

import socket
import urllib.error

from crypto_ml.stack.follow import AirflowClient, progress_line, transient


def test_progress_line_is_the_one_in_the_readme():
    states = ["success"] * 45 + ["running"] * 40 + ["queued"] * 4
    assert progress_line("[pipeline]", "running", "2017-06-29", states) == (
        "[pipeline] crypto_ml_master: running; history day 2017-06-29: coin pipelines 45 succeeded, "
        "0 failed, 44 running or queued, of 89")
    assert progress_line("[stack]", "queued", None, []) == "[stack] crypto_ml_master: queued; polling new data"


def test_passing_failures_are_retried_and_wrong_calls_are_not():
    assert transient(ConnectionRefusedError()) and transient(TimeoutError("timed out"))
    assert transient(urllib.error.URLError("refused"))
    assert transient(urllib.error.HTTPError("u", 503, "down", {}, None))
    assert not transient(urllib.error.HTTPError("u", 404, "no such run", {}, None))
    assert not transient(ValueError("bad"))


def test_a_closed_port_fails_with_the_cause():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AirflowClient(f"http://127.0.0.1:{port}")
    try:
        client.health()
    except urllib.error.URLError as exc:
        assert "refused" in str(exc.reason).lower()
    else:
        raise AssertionError("health() answered on a closed port")

"""Render the page in headless Chromium.

Without Debian's chromium + chromium-driver (scripts/browser-deps.sh installs them) the test is
skipped locally and fails when CI=true (tests/helpers/browser.py: require_chromium).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from tests.helpers import browser
from tests.helpers.web_data import EVIL, fill

CHROMIUM = browser.CHROMIUM
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_renders_in_headless_chromium(sqlite_url, tmp_path):
    browser.require_chromium()
    import uvicorn

    from crypto_ml.web import create_app

    fill(sqlite_url)

    port = _free_port()
    config = uvicorn.Config(create_app(sqlite_url), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        common = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
        url = f"http://127.0.0.1:{port}/"
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        assert "<h1>Crypto-ML: predictions and trades</h1>" in dom
        assert dom.count("<tr>") >= 8 and EVIL not in dom
        shot = tmp_path / "page.png"
        subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,1600", url],
                       capture_output=True, timeout=120)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 20_000
    finally:
        server.should_exit = True
        thread.join(timeout=10)

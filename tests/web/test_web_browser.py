"""Optional: render the page in headless Chromium (skipped when /usr/bin/chromium is absent)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium not installed at /usr/bin/chromium"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_renders_in_headless_chromium(sqlite_url, tmp_path):
    import uvicorn

    from crypto_ml.web import create_app

    data_file = Path(__file__).with_name("test_web_app.py")
    spec = importlib.util.spec_from_file_location("_crypto_ml_web_data", data_file)
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    data.fill(sqlite_url)

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
        assert dom.count("<tr>") >= 8 and data.EVIL not in dom
        shot = tmp_path / "page.png"
        subprocess.run([*common, f"--screenshot={shot}", "--window-size=1400,1600", url],
                       capture_output=True, timeout=120)  # fmt: skip
        assert shot.exists() and shot.stat().st_size > 20_000
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""The Crypto-ML view in headless Chromium (Selenium), on the bundled replay's 2017-07-03 as the
pipeline leaves it: 89 coins forecast by the naive default, then by drift (which trades on paper).

Screenshots go to ``$CRYPTO_ML_TEST_SCREENSHOTS`` (default: a fresh temporary folder), printed.
Without Debian's chromium + chromium-driver (scripts/browser-deps.sh installs them) the test is
skipped locally and fails when CI=true (tests/helpers/browser.py: require_chromium).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import browser
from tests.helpers.web_data import EVIL, fill

pytestmark = pytest.mark.slow

DAY = "2017-07-03"
#: Widths at which no table may be wider than the page: a laptop, and the Airflow UI's iframe
#: beside its navigation bar on a small screen.
WIDTHS = (1280, 1024)


def screenshots_dir() -> Path:
    """``$CRYPTO_ML_TEST_SCREENSHOTS/crypto_ml_view``, else a new temporary folder."""
    if os.environ.get("CRYPTO_ML_TEST_SCREENSHOTS"):
        return browser.screenshots_dir("crypto_ml_view")
    return Path(tempfile.mkdtemp(prefix="crypto-ml-screens-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(url: str):
    """The view's app on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    from crypto_ml.web import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def replay_day(url: str, models: tuple[str, ...]) -> None:
    """The bundled history up to :data:`DAY` in the project DB, and every coin forecast by each of
    ``models`` (the library's forecaster with its intervals, as the engine makes them), decided and
    placed on the paper broker as the coin runs do."""
    from crypto_ml import storage
    from crypto_ml.data.ingest import ingest
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.forecasting import make_forecaster
    from crypto_ml.trading.brokers import PaperBroker
    from crypto_ml.trading.service import handle_prediction

    storage.migrate(url)
    ingest(loader=CryptoLoader(as_of=DAY), url=url)
    broker = PaperBroker(url)
    for model in models:
        for coin in storage.coins_on(DAY, url=url):
            closes = [c for c in storage.load_closes(coin, as_of=DAY, url=url)[1] if c is not None]
            forecast = make_forecaster(model).fit(closes).predict_with_intervals(10)
            record = {
                "coin": coin,
                "as_of": DAY,
                "model": model,
                "version": 0,
                "horizon": 10,
                "values": forecast["values"],
                "last_close": closes[-1],
                "intervals": forecast["intervals"],
                "interval_method": forecast["interval_method"],
            }
            handle_prediction(record, kill_switch=False, broker=broker, url=url, run_id=f"{coin}__{DAY}")


def check_view(driver, base: str, shots: Path, name: str) -> dict:
    """Open the view at every width of :data:`WIDTHS`, take a screenshot of the top and of the whole
    page, and assert no table is wider than the page; returns the first width's layout."""
    from selenium.webdriver.common.by import By

    layouts = []
    for width in WIDTHS:
        driver.set_window_size(width, 1000)
        driver.get(base)
        browser._wait_for_any(driver, 20, day="#day-summary", what="the day's summary")
        browser.screenshot(driver, shots / f"{name}_{width}_top.png")
        browser.full_page_screenshot(driver, shots / f"{name}_{width}_page.png", width)
        layout = browser.assert_fits(driver, f"the view at {width} px")
        images = driver.find_elements(By.CSS_SELECTOR, ".plots img")
        loaded = [driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images]
        assert loaded and all(loaded), "every plot of the page loads"
        layouts.append(layout)
    return layouts[0]


def test_the_view_opens_on_the_day_and_fits_the_page(tmp_path):
    browser.require_chromium()
    from selenium.webdriver.common.by import By

    shots = screenshots_dir()
    naive, drift = (f"sqlite:///{tmp_path / f'{m}.db'}" for m in ("naive", "drift"))
    replay_day(naive, ("naive",))
    replay_day(drift, ("naive", "drift"))  # the default run first, then a run of another model
    with browser.chrome(shots) as driver:
        with serve(naive) as base:
            layout = check_view(driver, base, shots, "view_naive")
            summary = driver.find_element(By.ID, "day-summary").text
            assert f"The day: {DAY}" in summary and "89\ncoins predicted" in summary
            assert "every expected move is 0.00%: the 10 widest 80% intervals" in summary
            assert "No model evaluation is stored yet." in summary
            assert {t[0] for t in layout["tables"]} >= {"ranked", "predictions"}
        with serve(drift) as base:
            layout = check_view(driver, base, shots, "view_drift")
            summary = driver.find_element(By.ID, "day-summary").text
            assert "predictions: drift 89, naive 89" in summary and "10 largest expected moves" in summary
            assert "open paper positions" in summary and "paper P&L" in summary
            assert {t[0] for t in layout["tables"]} >= {"ranked", "positions", "predictions", "trades"}
            rows = driver.find_elements(By.CSS_SELECTOR, "#positions tbody tr")
            assert rows, "drift buys on paper on this day: the positions table lists them"
    print(f"\nscreenshots of the view in {shots}")


def test_the_small_test_data_renders_escaped(sqlite_url):
    """The HTML-payload data of the other web tests, as Chromium renders it."""
    browser.require_chromium()
    from selenium.webdriver.common.by import By

    fill(sqlite_url)
    with browser.chrome() as driver, serve(sqlite_url) as base:
        driver.get(base)
        browser._wait_for_any(driver, 20, day="#day-summary", what="the day's summary")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Crypto-ML: predictions and trades"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#predictions tbody tr")) == 5
        assert EVIL in driver.find_element(By.ID, "predictions").text  # shown as text, never run
        assert not driver.find_elements(By.TAG_NAME, "script")

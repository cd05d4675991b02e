"""The Airflow UI as an operator sees it, in headless Chromium, on the Celery stack after a run:
log in through the real auth manager, then the grid and graph of the master and of one coin, and
the Crypto-ML view (the plugin's page, alone and inside the Airflow UI) on that day.

Runs before test_celery_stack.py and test_faults.py (file order), right after the master run, so
the coin run it opens is among the newest runs the grid shows.
Screenshots land in ``$CRYPTO_ML_TEST_SCREENSHOTS/airflow_ui/``, else
``artifacts/screenshots/airflow_ui/`` (``CRYPTO_ML_ARTIFACTS_DIR`` overrides); the folder is printed.
"""

from __future__ import annotations

import pytest

from tests.helpers import browser

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MASTER_TASKS = [
    "check_all_coins",
    "coin_runs",
    "poll_new_data",
    "run_coin_pipelines",
    "summarize",
    "wait_for_coin_runs",
]
COIN_TASKS = [
    "decide",
    "issue_trade_request",
    "store_prediction",
    "submit_prediction",
    "transform",
    "wait_for_prediction",
]


def _newest_predicted_coin_run(stack) -> str:
    """A coin run the grid shows (it shows the newest runs) whose coin got a forecast."""
    for run in stack.api("GET", "/api/v2/dags/crypto_ml_coin/dagRuns?order_by=-run_after&limit=5")[
        "dag_runs"
    ]:
        tis = {ti["task_id"]: ti["state"] for ti in stack.task_instances("crypto_ml_coin", run["dag_run_id"])}
        if tis.get("transform") == "success":
            return run["dag_run_id"]
    raise AssertionError("none of the 5 newest coin runs has a forecast")


def test_operator_sees_master_and_coin_runs_in_grid_and_graph(celery_stack, master_run):
    browser.require_chromium()
    assert master_run["state"] == "success"
    base, run_id = celery_stack.base_url, master_run["run_id"]
    coin_run = _newest_predicted_coin_run(celery_stack)
    shots = browser.screenshots_dir("airflow_ui")
    with browser.chrome(shots) as driver:
        with pytest.raises(browser.LoginRefused, match="Invalid login"):
            browser.login(driver, base, celery_stack.admin_user, "admin")  # no default password
        browser.screenshot(driver, shots / "01_login_refused.png")
        browser.login(driver, base, celery_stack.admin_user, celery_stack.admin_password)

        grid = browser.open_grid(driver, base, "crypto_ml_master", run_id)
        browser.screenshot(driver, shots / "02_master_grid.png")
        assert sorted(grid.task_ids) == MASTER_TASKS
        assert grid.states == {
            "poll_new_data": "success",
            "coin_runs": "success",
            "run_coin_pipelines": "success",
            "wait_for_coin_runs": "success",
            "summarize": "success",
            "check_all_coins": "success",
        }

        # The fan-out: one task triggered all the day's coin runs (each a run of crypto_ml_coin,
        # `<coin>__<day>`).
        rows = browser.task_instances(driver, base, "crypto_ml_master", run_id)
        browser.screenshot(driver, shots / "03_master_task_instances.png")
        assert [r.state for r in rows if r.task_id == "run_coin_pipelines"] == ["success"]

        graph = browser.open_graph(driver, base, "crypto_ml_master", run_id)
        browser.screenshot(driver, shots / "04_master_graph.png")
        assert sorted(graph.task_ids) == MASTER_TASKS
        assert graph.states["run_coin_pipelines"] == "success"

        grid = browser.open_grid(driver, base, "crypto_ml_coin", coin_run)
        browser.screenshot(driver, shots / "05_coin_grid.png")
        assert sorted(grid.task_ids) == COIN_TASKS
        assert grid.states["store_prediction"] == "success"
        assert grid.states["issue_trade_request"] == "skipped"  # naive model: nothing to trade
        assert {
            grid.states[t] for t in ("transform", "submit_prediction", "wait_for_prediction", "decide")
        } == {"success"}

        graph = browser.open_graph(driver, base, "crypto_ml_coin", coin_run)
        browser.screenshot(driver, shots / "06_coin_graph.png")
        assert sorted(graph.task_ids) == COIN_TASKS
        assert graph.states["wait_for_prediction"] == "success"
        assert graph.states["issue_trade_request"] == "skipped"

        check_crypto_ml_view(driver, base, shots)
    print(f"screenshots in {shots}")


def check_crypto_ml_view(driver, base: str, shots) -> None:
    """The plugin's page opens on the day's summary and fits the page, alone and in the UI's iframe."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1600, 1000)
    driver.get(f"{base.rstrip('/')}/crypto-ml/")  # the logged-in browser's _token cookie authenticates it
    browser._wait_for_any(driver, browser.TIMEOUT, day="#day-summary", what="the Crypto-ML view's summary")
    summary = driver.find_element(By.ID, "day-summary").text
    assert "The day:" in summary and "coins predicted" in summary and "paper P&L" in summary
    assert "Model leaderboard" in summary
    browser.full_page_screenshot(driver, shots / "07_crypto_ml_view.png", 1600)
    browser.assert_fits(driver, "the Crypto-ML view")
    driver.set_window_size(1600, 1000)
    driver.get(f"{base.rstrip('/')}/plugin/crypto-ml")  # Browse > Crypto-ML: the page in an iframe
    browser._wait_for_any(driver, browser.TIMEOUT, frame="iframe", what="the Crypto-ML entry's iframe")
    driver.switch_to.frame(driver.find_element(By.TAG_NAME, "iframe"))
    try:
        browser._wait_for_any(driver, browser.TIMEOUT, day="#day-summary", what="the summary in the iframe")
        browser.wait_for_images(driver)
        browser.assert_fits(driver, "the Crypto-ML view in the Airflow UI's iframe")
    finally:
        driver.switch_to.default_content()
    browser.screenshot(driver, shots / "08_crypto_ml_in_airflow_ui.png")

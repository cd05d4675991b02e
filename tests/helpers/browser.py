"""Headless-Chromium helpers for browser tests of the Airflow UI (a helper module, not a test).

Selenium drives Debian's ``chromium`` with its ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; ``scripts/browser-deps.sh`` installs both). Typical use::

    require_chromium()
    shots = artifacts_dir("airflow_ui")
    with chrome(shots) as driver:
        login(driver, base_url, "admin", password)  # LoginRefused when the form says no
        grid = open_grid(driver, base_url, "my_dag", run_id)
        assert grid.task_ids == ["extract", ...] and grid.states == {"extract": "success", ...}
        screenshot(driver, shots / "grid.png")
        graph = open_graph(driver, base_url, "my_dag", run_id)  # .task_ids, .states
        rows = task_instances(driver, base_url, "my_dag", run_id)  # mapped instances too

Import it as ``tests/data`` imports its helper (the directory on ``sys.path``, then
``import browser``), or with ``importlib`` as ``tests/web/test_web_browser.py`` does (register
the module in ``sys.modules`` before executing it: its dataclasses need that).

What the helpers rely on in Airflow 3.3's UI (React, served by the API server):

- Login (FAB auth manager): any UI page without the ``_token`` cookie redirects to
  ``/auth/login/?next=...``, a Flask-AppBuilder form (``#username``, ``#password``,
  ``input[type=submit]``); a refused login re-renders it with a flash ``.alert``.
- ``/dags/<dag_id>`` and ``/dags/<dag_id>/runs/<run_id>`` (run id URL-encoded); the left panel
  shows the grid or the graph, toggled by ``button[value=grid]`` (``data-testid=grid-view-button``)
  and ``button[value=graph]`` (remembered in localStorage ``default_dag_view``).
- Grid: a row per task name ``[data-node-id][data-task-id]`` (``data-testid=task-<id>``), a
  cell per run and task ``[data-run-id][data-task-id]`` holding a link
  (``data-testid="grid-<run_id>-<task_id>"``) around a ``task-state-badge`` that shows the state
  by colour and icon only; the state as text is in the cell's tooltip on hover ("Task ID: x",
  "State: Success", "Run ID: ..."), which is what :func:`open_grid` reads.
- Graph (React Flow): a node per task ``.react-flow__node-task[data-id=<task_id>]``, with a
  ``[data-testid=state-badge]`` showing the raw state (``success``) when a run is selected.
- A run's page opens on its "Task Instances" table: ``td[data-testid=table-cell-<column>]``
  (``task_display_name`` linking to ``.../tasks/<task_id>[/mapped/<index>]``,
  ``rendered_map_index``, ``state`` with the label, e.g. "Success").
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # seconds for a page or view to render; the first load of the UI bundle is the slowest

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1000",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
    "--lang=en-US",  # the helpers read English labels (tooltips, error text)
)


class LoginRefused(AssertionError):
    """The login form came back with an error instead of the Airflow UI."""


# --------------------------------------------------------------------------------------------- setup


def require_chromium() -> None:
    """Skip the test when Chromium or its driver is missing; fail instead when ``CI=true``."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium Python package (requirements.txt)")
    if not missing:
        return
    message = (
        f"headless browser not available: missing {', '.join(missing)}; "
        "run scripts/browser-deps.sh (as root: apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def artifacts_dir(name: str) -> Path:
    """``<repo>/artifacts/screenshots/<name>`` (base overridable by ``CRYPTO_ML_ARTIFACTS_DIR``), created."""
    base = os.environ.get("CRYPTO_ML_ARTIFACTS_DIR") or REPO / "artifacts" / "screenshots"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"
    path = Path(base) / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshots_dir(name: str) -> Path:
    """Where a test's screenshots go: ``$CRYPTO_ML_TEST_SCREENSHOTS/<name>`` when set, else
    :func:`artifacts_dir` (created)."""
    base = os.environ.get("CRYPTO_ML_TEST_SCREENSHOTS")
    if not base:
        return artifacts_dir(name)
    path = Path(base) / re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def chrome(artifacts: Path | None = None, *, timeout: float = TIMEOUT) -> Iterator[WebDriver]:
    """A headless Chromium driven by chromedriver, with a throwaway profile; always quit afterwards.

    With ``artifacts``, chromedriver's log goes to ``artifacts/chromedriver.log`` and, when the
    block raises, the page as it was is saved as ``failure.png`` / ``failure.html`` there.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_chromium()
    profile = tempfile.mkdtemp(prefix="crypto-ml-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    log_output = str(artifacts / "chromedriver.log") if artifacts else os.devnull
    service = Service(str(CHROMEDRIVER), log_output=log_output)
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        try:
            yield driver
        except BaseException as exc:
            if artifacts is not None and not isinstance(exc, (pytest.skip.Exception, KeyboardInterrupt)):
                _save_failure(driver, artifacts)
            raise
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        with contextlib.suppress(Exception):
            service.stop()  # no-op after quit(); stops chromedriver if the browser never started
        process = getattr(service, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: WebDriver, path: Path | str) -> Path:
    """Save what the browser window shows as a PNG (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"Chromium could not save a screenshot to {path}")
    return path


def _save_failure(driver: WebDriver, artifacts: Path) -> None:
    with contextlib.suppress(Exception):
        driver.save_screenshot(str(artifacts / "failure.png"))
    with contextlib.suppress(Exception):
        (artifacts / "failure.html").write_text(
            f"<!-- {driver.current_url} -->\n{driver.page_source}", encoding="utf-8"
        )


# ---------------------------------------------------------------------------------------------- login


def login(
    driver: WebDriver, base_url: str, username: str, password: str, *, timeout: float = TIMEOUT
) -> None:
    """Log in through the FAB login form as a user would, then wait for the Airflow UI.

    Opens the UI's home page, which redirects to ``/auth/login/?next=/`` without a session;
    types the credentials, clicks "Sign In" and waits for the React UI's navigation bar.
    Raises :class:`LoginRefused` with the page's error text when the form comes back.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base_url = base_url.rstrip("/")
    driver.get(f"{base_url}/")
    found = _wait_for_any(driver, timeout, form="#username", ui="[data-testid=nav-sidebar]",
                          what=f"the login form or the Airflow UI at {base_url}/")  # fmt: skip
    if found == "ui":
        return  # this browser is already logged in (as whoever it logged in as)
    user_field = driver.find_element(By.ID, "username")
    user_field.clear()
    user_field.send_keys(username)
    password_field = driver.find_element(By.ID, "password")
    password_field.clear()
    password_field.send_keys(password)
    button = driver.find_element(By.CSS_SELECTOR, "form input[type=submit], form button[type=submit]")
    button.click()
    try:
        WebDriverWait(driver, timeout).until(lambda d: _is_stale(button))
    except TimeoutException as exc:
        raise AssertionError(
            f"clicking Sign In at {driver.current_url} did not submit the login form"
        ) from exc
    found = _wait_for_any(driver, timeout, form="#username", ui="[data-testid=nav-sidebar]",
                          what="the Airflow UI after signing in")  # fmt: skip
    if found == "form":
        errors = [e.text.replace("×", "").strip() for e in driver.find_elements(By.CSS_SELECTOR, ".alert")]
        errors = [e for e in errors if e] or [_visible_text(driver)[:300]]
        raise LoginRefused(f"login as {username!r} refused at {driver.current_url}: {' | '.join(errors)}")


# ------------------------------------------------------------------------------------------------ views


@dataclass
class GridView:
    """What the grid shows: task rows (top to bottom), run columns, and one run's task states."""

    url: str
    task_ids: list[str]
    run_ids: list[str]  # the runs with cells in the grid, in DOM order (oldest first)
    run_id: str | None  # the run whose states were read: the one asked for, else the newest
    states: dict[str, str] = field(default_factory=dict)  # task id -> "success", "failed", ...
    labels: dict[str, str] = field(default_factory=dict)  # task id -> "Success" as the tooltip says
    tooltips: dict[str, str] = field(default_factory=dict)  # task id -> the whole tooltip text


@dataclass
class GraphView:
    """What the graph shows: task nodes and, when a run is selected, their state badges."""

    url: str
    task_ids: list[str]  # node ids, sorted
    states: dict[str, str] = field(default_factory=dict)  # task id -> "success" (empty without a run)
    labels: dict[str, str] = field(default_factory=dict)  # task id -> the node's visible text


def dag_url(base_url: str, dag_id: str, run_id: str | None = None) -> str:
    """The UI page of a DAG, or of one of its runs."""
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}"
    return f"{url}/runs/{quote(run_id, safe='')}" if run_id else url


def open_grid(
    driver: WebDriver, base_url: str, dag_id: str, run_id: str | None = None, *, timeout: float = TIMEOUT
) -> GridView:
    """Open the grid of a DAG (or of a run), wait until it is rendered, read it.

    States come from each cell's tooltip (hovered one by one, as a user would), for ``run_id``
    or, without it, for the newest run in the grid.
    """
    url = dag_url(base_url, dag_id, run_id)
    driver.get(url)
    _show_view(driver, "grid", timeout)

    def rows_and_cells() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None:
        task_ids = tuple(driver.execute_script(_JS_GRID_ROWS))
        if not task_ids:
            return None
        cells = tuple(tuple(c) for c in driver.execute_script(_JS_GRID_CELLS))
        if run_id and not any(r == run_id for r, _ in cells):
            return None
        return task_ids, cells

    task_ids, cells = _wait_stable(driver, rows_and_cells, timeout, f"the grid of {dag_id!r} at {url}")
    run_ids = list(dict.fromkeys(r for r, _ in cells))
    newest = run_ids[-1] if run_ids else None
    view = GridView(url=url, task_ids=list(task_ids), run_ids=run_ids, run_id=run_id or newest)
    for task_id in task_ids:
        if (view.run_id, task_id) in cells:
            cell = f'[data-run-id="{_css(view.run_id)}"][data-task-id="{_css(task_id)}"] a'
            text = _hover_tooltip(driver, cell, task_id, timeout)
            view.tooltips[task_id] = text
            label = _field(text, "State")
            view.labels[task_id] = label
            view.states[task_id] = _state_key(label)
    return view


def open_graph(
    driver: WebDriver, base_url: str, dag_id: str, run_id: str | None = None, *, timeout: float = TIMEOUT
) -> GraphView:
    """Open the graph of a DAG (or of a run), wait until the nodes are laid out, read them.

    With ``run_id``, it also waits for the nodes' state badges (a node whose task has no
    instance yet has none, and no entry in ``states``).
    """
    url = dag_url(base_url, dag_id, run_id)
    driver.get(url)
    _show_view(driver, "graph", timeout)

    def nodes() -> tuple[tuple[str, str | None, str], ...] | None:
        found = tuple(tuple(n) for n in driver.execute_script(_JS_GRAPH_NODES))
        if not found or (run_id and not any(state for _, state, _ in found)):
            return None
        return found

    found = _wait_stable(driver, nodes, timeout, f"the graph of {dag_id!r} at {url}")
    _wait_stable(driver, lambda: driver.execute_script(_JS_VIEWPORT), timeout, "the graph to settle")
    return GraphView(
        url=url,
        task_ids=sorted(n[0] for n in found),
        states={task_id: state for task_id, state, _ in found if state},
        labels={task_id: text for task_id, _, text in found},
    )


@dataclass(frozen=True)
class TaskInstanceRow:
    """A row of a run's "Task Instances" table."""

    task_id: str
    map_index: int | None  # None for an unmapped task
    map_label: str  # the rendered map index (map_index_template), "" for an unmapped task
    state: str  # "success", "failed", ...
    label: str  # "Success" as the badge says


def task_instances(
    driver: WebDriver, base_url: str, dag_id: str, run_id: str, *, timeout: float = TIMEOUT
) -> list[TaskInstanceRow]:
    """Open a run's page and read its "Task Instances" tab (the default one): a row per task
    instance, mapped ones included (its first page only: 50 rows)."""
    url = dag_url(base_url, dag_id, run_id)
    driver.get(url)

    def rows() -> tuple[tuple[str | None, str, str, str], ...] | None:
        return tuple(tuple(r) for r in driver.execute_script(_JS_TASK_INSTANCES)) or None

    found = _wait_stable(driver, rows, timeout, f"the task instances of run {run_id!r} at {url}")
    result = []
    for href, name, map_label, label in found:
        match = re.search(r"/tasks/([^/?#]+)(?:/mapped/(-?\d+))?", href or "")
        task_id = unquote(match.group(1)) if match else name
        map_index = int(match.group(2)) if match and match.group(2) is not None else None
        result.append(TaskInstanceRow(task_id, map_index, map_label, _state_key(label), label))
    return result


# ------------------------------------------------------------------------------------------ page layout

_JS_LAYOUT = """
return {page: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth,
        tables: Array.from(document.querySelectorAll('table')).map(
          t => [t.id, Math.ceil(t.getBoundingClientRect().right), Math.ceil(t.scrollWidth)])};
"""


def assert_fits(driver: WebDriver, what: str = "the page") -> dict[str, Any]:
    """Assert the page does not scroll sideways and no table is wider than it (its right edge and
    its content within the page's width); returns ``{page, scroll, tables: [[id, right, width]]}``."""
    layout = driver.execute_script(_JS_LAYOUT)
    assert layout["scroll"] <= layout["page"], f"{what} scrolls sideways: {layout}"
    wide = [t for t in layout["tables"] if t[1] > layout["page"] or t[2] > layout["page"]]
    assert not wide, f"tables of {what} wider than its {layout['page']} px: {wide}"
    return layout


def wait_for_images(driver: WebDriver, timeout: float = TIMEOUT) -> None:
    """Wait until every image of the page is loaded (the lazy ones in the window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not driver.execute_script(
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    ):
        time.sleep(0.2)


def full_page_screenshot(driver: WebDriver, path: Path | str, width: int, *, max_height: int = 8000) -> Path:
    """A screenshot of the whole page at ``width`` px: the window grown to the page's height."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(height + 140, max_height))
    wait_for_images(driver)
    return screenshot(driver, path)


# -------------------------------------------------------------------------------------------- internals

_JS_GRID_ROWS = """
return Array.from(document.querySelectorAll('[data-node-id][data-task-id]'))
  .map(e => [e.getBoundingClientRect().top, e.getAttribute('data-task-id')])
  .sort((a, b) => a[0] - b[0]).map(r => r[1]);
"""
_JS_GRID_CELLS = """
return Array.from(document.querySelectorAll('[data-run-id][data-task-id]'))
  .map(e => [e.getBoundingClientRect().left, e.getAttribute('data-run-id'), e.getAttribute('data-task-id')])
  .sort((a, b) => a[0] - b[0]).map(c => [c[1], c[2]]);
"""
_JS_GRAPH_NODES = """
return Array.from(document.querySelectorAll('.react-flow__node-task[data-id]')).map(n => {
  const badge = n.querySelector('[data-testid="state-badge"]');
  return [n.getAttribute('data-id'), badge ? badge.textContent.trim() : null, n.innerText.trim()];
});
"""
_JS_DAG_VIEW = """
try { return JSON.parse(window.localStorage.getItem('default_dag_view')) || 'grid'; }
catch (e) { return 'grid'; }
"""
_JS_TASK_INSTANCES = """
return Array.from(document.querySelectorAll('tr')).map(tr => {
  const cell = id => tr.querySelector(`td[data-testid="table-cell-${id}"]`);
  const name = cell('task_display_name'), state = cell('state');
  // Loading skeletons have the cells but no text yet: not a row.
  if (!name || !state || !name.innerText.trim() || !state.innerText.trim()) return null;
  const link = name.querySelector('a');
  const index = cell('rendered_map_index');
  return [link ? link.getAttribute('href') : null, name.innerText.trim(),
          index ? index.innerText.trim() : '', state.innerText.trim()];
}).filter(r => r);
"""
_JS_VIEWPORT = """
const v = document.querySelector('.react-flow__viewport');
return v ? v.style.transform || 'none' : null;
"""


def _show_view(driver: WebDriver, view: str, timeout: float) -> None:
    """Wait for the DAG page's grid/graph toggle and select ``view`` on it (as a user clicks it)."""
    from selenium.webdriver.common.by import By

    _wait_for_any(driver, timeout, toggle="[data-testid=grid-view-button]",
                  what=f"the DAG page's grid/graph toggle at {driver.current_url}")  # fmt: skip
    button = driver.find_element(
        By.XPATH, f"//*[@data-testid='grid-view-button']/parent::*/button[@value='{view}']"
    )
    # Clicking the view already shown resizes the panels instead, so only click to switch.
    if driver.execute_script(_JS_DAG_VIEW) != view:
        button.click()


def _hover_tooltip(driver: WebDriver, selector: str, task_id: str, timeout: float) -> str:
    """Hover an element and return the text of the tooltip it opens (which must name ``task_id``)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    needle = f"Task ID: {task_id}"

    def tooltip() -> str | None:
        for el in driver.find_elements(By.CSS_SELECTOR, "[data-scope=tooltip][data-part=content]"):
            with contextlib.suppress(Exception):
                text = el.text  # "" once hidden
                if needle in text.splitlines():
                    return text
        return None

    def wait_closed() -> None:
        end = time.monotonic() + 3  # its fade-out, so screenshots taken next don't show it
        while tooltip() and time.monotonic() < end:
            time.sleep(0.1)

    def move_away() -> None:  # onto the navigation bar, so the tooltip closes
        with contextlib.suppress(Exception):
            away = driver.find_element(By.CSS_SELECTOR, "[data-testid=nav-sidebar]")
            ActionChains(driver).move_to_element(away).perform()

    deadline = time.monotonic() + timeout
    problem = "no tooltip opened"
    while time.monotonic() < deadline:
        try:  # found again each time: the grid re-renders when it refreshes
            element = driver.find_element(By.CSS_SELECTOR, selector)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            ActionChains(driver).move_to_element(element).perform()
        except WebDriverException as exc:
            problem = f"{type(exc).__name__}: {exc.msg}"
            time.sleep(0.3)
            continue
        for _ in range(30):  # the tooltip opens after a 500 ms delay
            text = tooltip()
            if text:
                move_away()
                wait_closed()
                return text
            time.sleep(0.1)
        move_away()  # leave and come back
    raise AssertionError(
        f"no tooltip naming task {task_id!r} when hovering {selector} at {driver.current_url} ({problem})"
    )


def _css(value: str) -> str:
    """``value`` inside a double-quoted CSS attribute selector."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name!r} line in the tooltip {text!r}")


def _state_key(label: str) -> str:
    """The UI's English state label ("Up For Retry") as Airflow's state value ("up_for_retry")."""
    return label.strip().lower().replace(" ", "_")


def _wait_for_any(driver: WebDriver, timeout: float, *, what: str, **selectors: str) -> str:
    """Wait until one of the CSS selectors matches; return its keyword."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        for key, css in selectors.items():
            with contextlib.suppress(Exception):
                if driver.find_elements(By.CSS_SELECTOR, css):
                    return key
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; the page at {driver.current_url} "
                f"shows: {_visible_text(driver)[:300]!r}"
            )
        time.sleep(0.1)


def _wait_stable(driver: WebDriver, read: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``read`` until it returns the same non-empty value twice in a row, 0.3 s apart."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        with contextlib.suppress(Exception):  # elements re-rendered between calls
            value = read()
            if value and value == previous:
                return value
            previous = value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} (last read: {previous!r}); "
                f"the page at {driver.current_url} shows: {_visible_text(driver)[:300]!r}"
            )
        time.sleep(0.3)


def _is_stale(element) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_enabled()
        return False
    except StaleElementReferenceException:
        return True


def _visible_text(driver: WebDriver) -> str:
    try:
        return " ".join(driver.execute_script("return document.body ? document.body.innerText : ''").split())
    except Exception as exc:  # noqa: BLE001 - only for an error message
        return f"<page text unavailable: {exc}>"

"""One REST client for both stacks: trigger, follow and read a DAG run through Airflow 3's public
REST API (``/api/v2``), and the progress lines and day report a user sees.

Both stacks authenticate the same way: a JWT from the auth manager's ``/auth/token``, sent as
``Authorization: Bearer``. The FAB auth manager (the Celery stack) issues it for a user name and
password (``POST``); the development SimpleAuthManager of the embedded stack, in its all-admins
mode on 127.0.0.1, issues it without credentials (``GET``). Nothing here reads Airflow's database.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable

import requests

from crypto_ml.utils.http import retrying_session

MASTER = "crypto_ml_master"
COIN = "crypto_ml_coin"
#: The master task whose return value says what was polled (``history_day``, ``coins``, ``market``).
POLL_TASK = "poll_new_data"
FINISHED = ("success", "failed")
#: Rows per page of the REST API's lists (Airflow's default ``[api] maximum_page_limit``).
PAGE = 100


class RunTimeout(TimeoutError):
    """A run (or the parsing of DAGs) did not finish within the time given."""


class ApiError(requests.HTTPError):
    """The REST API answered with an error status: :attr:`code`, and the answer's detail in the
    message. An ``OSError``, like every failed call (every ``requests`` error is an ``IOError``)."""

    def __init__(self, method: str, url: str, code: int, detail: str) -> None:
        super().__init__(f"{method} {url}: HTTP {code}: {detail}")
        self.code = code


def transient(exc: BaseException) -> bool:
    """Whether a failed call is worth repeating: the api-server is restarting, overloaded or slow
    (no connection, a socket timeout, a 5xx), unlike a 4xx answer, which says the call is wrong."""
    if isinstance(exc, ApiError):
        return exc.code >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError))


class AirflowClient:
    """Airflow's public REST API at ``base_url``.

    :param credentials: ``(user, password)`` for ``POST /auth/token`` (FAB auth manager); ``None``
        takes the all-admins token of the SimpleAuthManager (``GET /auth/token``).
    :param check: called before every wait step (a stack passes its ``check_alive``, so a wait
        stops as soon as the supervisor gave up on a component).
    """

    def __init__(
        self,
        base_url: str,
        credentials: tuple[str, str] | None = None,
        check: Callable[[], None] | None = None,
        timeout: float = 30,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.check = check or (lambda: None)
        self.timeout = timeout
        self._token: str | None = None
        self._sessions: dict[int, requests.Session] = {}

    # -- HTTP ----------------------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        """A JWT from the auth manager (cached until a 401 says it expired)."""
        if self._token is None or refresh:
            if self.credentials is None:
                body = self._request("GET", "/auth/token", None, auth=False)
            else:
                user, password = self.credentials
                body = self._request(
                    "POST", "/auth/token", {"username": user, "password": password}, auth=False
                )
            self._token = body["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None, attempts: int = 3) -> dict:
        """Call the REST API with the token; the JSON answer (:class:`ApiError` with the answer's
        detail). A read (GET) that fails for a passing reason (no connection, a timeout, a 5xx) is
        tried up to ``attempts`` times by the session (:func:`crypto_ml.utils.http.retrying_session`);
        a write is sent once."""
        try:
            return self._request(method, path, body, auth=True, attempts=attempts)
        except ApiError as exc:
            if exc.code != 401:
                raise
            self.token(refresh=True)  # expired token
            return self._request(method, path, body, auth=True, attempts=attempts)

    def _session(self, attempts: int) -> requests.Session:
        if attempts not in self._sessions:
            self._sessions[attempts] = retrying_session(
                retries=max(0, attempts - 1), backoff=1.0, timeout=self.timeout, methods=("GET",)
            )
        return self._sessions[attempts]

    def _request(self, method: str, path: str, body: dict | None, *, auth: bool, attempts: int = 1) -> dict:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        url = self.base_url + path
        resp = self._session(attempts).request(method, url, json=body, headers=headers)
        if resp.status_code >= 400:
            raise ApiError(method, url, resp.status_code, resp.text[:2000])
        return resp.json() if resp.content else {}

    def _pages(self, path: str, key: str, **params) -> list[dict]:
        out: list[dict] = []
        while True:
            query = urllib.parse.urlencode({**params, "limit": PAGE, "offset": len(out)})
            page = self.api("GET", f"{path}?{query}")
            out.extend(page[key])
            if not page[key] or len(out) >= page["total_entries"]:
                return out

    # -- endpoints -----------------------------------------------------------------------------
    def health(self) -> dict:
        """``/api/v2/monitor/health`` (no token needed): every component's status."""
        return self._request("GET", "/api/v2/monitor/health", None, auth=False)

    def paused(self) -> dict[str, bool]:
        """Every parsed DAG id -> ``is_paused``."""
        return {d["dag_id"]: bool(d["is_paused"]) for d in self._pages("/api/v2/dags", "dags")}

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict | None = None) -> str:
        """Trigger a run of ``dag_id`` (``logical_date`` ISO 8601 with a zone, or ``None``); its id."""
        run = self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf or {}}
        )
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def dag_runs(self, dag_id: str, **params) -> list[dict]:
        """Runs of ``dag_id`` (every page), filtered by the API's query ``params``
        (e.g. ``run_id_pattern``, ``order_by="-id"``)."""
        return self._pages(f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs", **params)

    def task_instances(self, dag_id: str, run_id: str = "~") -> list[dict]:
        """Every task instance of ``dag_id``'s run ``run_id`` (``~``: of all its runs)."""
        return self._pages(
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='~')}/taskInstances",
            "task_instances",
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        """The deserialized XCom ``key`` of a task, or ``None`` while there is none."""
        try:
            value = self.api(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
                f"/taskInstances/{task_id}/xcomEntries/{key}?deserialize=true",
            )["value"]
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value

    # -- waiting -------------------------------------------------------------------------------
    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        """Until the dag-processor has parsed every one of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        found: set[str] = set()
        while True:
            self.check()
            try:
                found = set(self.paused())
            except OSError as exc:
                if not transient(exc):
                    raise
            if set(dag_ids) <= found:
                return
            if time.monotonic() > deadline:
                raise RunTimeout(f"DAGs not parsed within {timeout:.0f} s: {sorted(set(dag_ids) - found)}")
            time.sleep(1)

    def unpause(self, dag_ids: tuple[str, ...] = (COIN, MASTER)) -> dict[str, bool]:
        """Unpause ``dag_ids`` once parsed (Airflow creates DAGs paused; a run of a paused DAG stays
        "queued" without a word). Returns every DAG's ``is_paused`` after that."""
        self.wait_for_dags(list(dag_ids))
        for dag_id in dag_ids:
            self.set_paused(dag_id, False)
        return self.paused()

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float = 1800,
        on_poll: Callable[[str], None] | None = None,
        interval: float = 3,
    ) -> str:
        """Poll the run until it is finished; its final state (``on_poll(state)`` each time).
        A call that fails for a passing reason (see :func:`transient`: the api-server restarting
        or too busy to answer in time) is tried again at the next poll; :class:`RunTimeout`
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        state, problem = "unknown", ""
        while True:
            self.check()
            try:
                state = self.dag_run(dag_id, run_id)["state"]
                if on_poll is not None:
                    on_poll(state)
                problem = ""
            except OSError as exc:
                if not transient(exc):
                    raise
                problem = f" (last call failed: {exc})"
            if state in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise RunTimeout(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s{problem}")
            time.sleep(interval)


# -- following the master run ------------------------------------------------------------------
def coin_run_states(client: AirflowClient, day: str, conf: dict | None = None) -> list[str]:
    """The states of the coin runs of history day ``day`` that a master run with ``conf`` asks for
    (run ids :func:`crypto_ml.pipeline.params.coin_run_id`: ``<coin>__<day>``, plus ``__<model>`` and
    ``__h<horizon>`` when the conf names other ones), never another model's runs of that day."""
    from crypto_ml.pipeline.params import DEFAULT_HORIZON, DEFAULT_MODEL, coin_run_id

    conf = conf or {}
    suffix = coin_run_id(
        "", day, model=conf.get("model") or DEFAULT_MODEL, horizon=conf.get("horizon") or DEFAULT_HORIZON
    )  # "__<day>[__m][__hN]"
    runs = client.dag_runs(COIN, run_id_pattern=suffix)
    return [r["state"] for r in runs if r["dag_run_id"].endswith(suffix)]


def progress_line(prefix: str, state: str, day: str | None, coin_states: list[str]) -> str:
    """``<prefix> crypto_ml_master: running; history day D: coin pipelines ...`` (docs/getting-started.md)."""
    if not day:
        return f"{prefix} {MASTER}: {state}; polling new data"
    n = Counter(coin_states)
    return (
        f"{prefix} {MASTER}: {state}; history day {day}: coin pipelines {n['success']} succeeded, "
        f"{n['failed']} failed, {n['running'] + n['queued']} running or queued, of {len(coin_states)}"
    )


def follow_master(
    client: AirflowClient,
    run_id: str,
    say: Callable[[str], None],
    *,
    prefix: str = "[pipeline]",
    timeout: float = 1800,
    interval: float = 3,
) -> str:
    """Follow master run ``run_id`` until it finishes, saying a progress line whenever it changes
    (the history day comes from ``poll_new_data``'s XCom, the coin runs are that day's). Returns
    the final state, or ``"timeout"`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last, day, conf = "", None, None

    def poll(state: str) -> None:
        nonlocal last, day, conf
        if conf is None:
            conf = client.dag_run(MASTER, run_id).get("conf") or {}
        if day is None:
            polled = client.xcom(MASTER, run_id, POLL_TASK)
            day = polled.get("history_day") if isinstance(polled, dict) else None
        line = progress_line(prefix, state, day, coin_run_states(client, day, conf) if day else [])
        if line != last or state in FINISHED:
            say(line)
            last = line

    try:
        return client.wait_for_run(
            MASTER, run_id, timeout=max(0.0, deadline - time.monotonic()), on_poll=poll, interval=interval
        )
    except RunTimeout:
        say(f"{prefix} gave up after {timeout:.0f} s")
        return "timeout"


def polled_of(client: AirflowClient, run_id: str) -> dict | None:
    """What master run ``run_id`` polled (``poll_new_data``'s return value), or ``None``."""
    polled = client.xcom(MASTER, run_id, POLL_TASK)
    return polled if isinstance(polled, dict) else None


def print_day_report(
    polled: dict, say, url: str | None = None, coins: list[str] | None = None, conf: dict | None = None
) -> None:
    """The day's forecasts and decisions of the run's model and horizon (``conf``; default: the
    defaults) from the project DB (``url``; default: the configured one), the coins without a
    forecast (of ``coins``, default: all polled), and the day's plot."""
    from crypto_ml.pipeline.catalog import DEFAULT_MODEL
    from crypto_ml.pipeline.params import DEFAULT_HORIZON
    from crypto_ml.settings.paths import home_dir
    from crypto_ml.storage.reporting import day_table, format_table, interval_note, plot_day, printed

    day = polled["history_day"]
    conf = conf or {}
    table = day_table(
        day, url=url, model=conf.get("model") or DEFAULT_MODEL, horizon=conf.get("horizon") or DEFAULT_HORIZON
    )
    market = polled.get("market", "replay of the bundled 2013-2017 history")
    say(f"\nForecasts as of {day} ({market}; {len(table)} coins):\n")
    say(format_table(printed(table)))
    note = interval_note(table)
    if note:
        say(f"\n{note}")
    missing = sorted(set(coins or polled["coins"]) - set(table["coin"]))
    if missing:
        say(
            f"\n{len(missing)} coins have no forecast (skipped: too little history, or failed; "
            f"see crypto_ml_coin in the UI): {', '.join(missing)}"
        )
    path = plot_day(day, home_dir() / "reports" / f"{day}.png", url=url)
    trades = int((table["decision"] != "stored").sum()) if len(table) else 0
    say(f"\n{len(table)} forecasts stored, {trades} trade requests (paper broker). Plot: {path}")

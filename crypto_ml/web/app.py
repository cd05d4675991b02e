"""FastAPI app (routes only): recent predictions and trade requests (HTML page, JSON) and a plot
per coin (PNG). The queries are :mod:`crypto_ml.storage.dashboard`, the plot :mod:`crypto_ml.web.plot`,
the pages the Jinja templates of :mod:`crypto_ml.web.pages`.

Routes (relative to wherever the app is mounted; the Airflow plugin mounts it at ``/crypto-ml``):

``GET /``
    HTML page. Without ``?coin=``: the summary of the newest day (coins, predictions, decisions,
    trade requests, the paper book's open positions and P&L), the coins that matter that day (the
    largest expected moves, or the widest intervals under the naive model, and every traded coin),
    a leaderboard of the stored model evaluations, and the plots of bitcoin and those coins. Then
    predictions newest first with their trade decision and trade requests newest first.
    ``?coin=`` shows one coin (its plot and rows), ``?limit=`` caps each table (default 50).
``GET /plot.png?coin=bitcoin``
    PNG: the coin's recent closes from ``prices``, every stored forecast path in that window
    (dashed, one colour per model) and the trade requests (▲ buy, ▼ sell). 404 for an unknown coin.
``GET /api/predictions``, ``GET /api/trades``
    The same rows as JSON.

The app only reads the project database (never migrates or writes it), shows no connection
details beyond the backend name, and escapes everything it puts into HTML.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crypto_ml.settings.paths import airflow_home
from crypto_ml.storage import dashboard, database_url
from crypto_ml.web.pages import query, render
from crypto_ml.web.plot import finite, render_plot
from crypto_ml.web.summary import overview

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: Plots shown on the unfiltered page: bitcoin, the day's ranked coins, the newest predictions' coins.
MAX_PAGE_PLOTS = 4
#: The coin a newcomer looks for first.
FIRST_COIN = "bitcoin"


def describe_database(url: str | None = None) -> str:
    """Which database the page reads, without host, name or password: backend and where it came from.

    E.g. ``postgresql, from $CRYPTO_ML_DATABASE_URL`` or ``sqlite, the default file under
    AIRFLOW_HOME`` (the latter in an api-server that was given no URL usually means a wrong setup).
    """
    resolved = database_url(url)
    if url:
        origin = "given to the app"
    elif os.environ.get("CRYPTO_ML_DATABASE_URL"):
        origin = "from $CRYPTO_ML_DATABASE_URL"
    elif resolved == f"sqlite:///{airflow_home() / 'crypto_ml.db'}":
        origin = "the default file under AIRFLOW_HOME"
    else:
        origin = "from the Airflow connection crypto_ml_db"
    return f"{make_url(resolved).get_backend_name()}, {origin}"


def _base_href(request: Request) -> str:
    """Path the app is mounted at, with a trailing slash: relative links resolve against it."""
    return str(request.scope.get("root_path") or "").rstrip("/") + "/"


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dt.date | dt.datetime):
            out[k] = v.isoformat()
        elif isinstance(v, float):
            out[k] = finite(v)
        elif isinstance(v, list):
            out[k] = [finite(x) if isinstance(x, float) else x for x in v]
        elif isinstance(v, dict):
            out[k] = _json_row(v)
        else:
            out[k] = v
    return out


def create_app(url: str | None = None, *, dependencies: Sequence[Any] | None = None) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    url
        Project database URL; ``None`` resolves it per request with
        :func:`crypto_ml.storage.database_url` (``$CRYPTO_ML_DATABASE_URL``, the Airflow Connection
        ``crypto_ml_db``, else the SQLite file under ``AIRFLOW_HOME``).
    dependencies
        FastAPI dependencies run before every route, e.g. Airflow's authentication
        (:func:`airflow_auth_dependencies`). None: no access control of its own.
    """
    app = FastAPI(
        title="Crypto-ML predictions and trades",
        dependencies=list(dependencies or []),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.crypto_ml_url = url

    def unavailable(exc: Exception) -> HTTPException:
        # The exception may name hosts or databases: log it, never show it.
        log.exception("crypto_ml web: reading the project database failed", exc_info=exc)
        return HTTPException(503, "The Crypto-ML database could not be read; see the api-server log.")

    @app.get("/", response_class=HTMLResponse)
    def index(
        request: Request,
        coin: str | None = Query(None, max_length=96, description="only this coin"),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="rows per table"),
    ) -> HTMLResponse:
        coin = coin or None
        base = _base_href(request)
        summary = None
        try:
            coins = dashboard.known_coins(url)
            predictions = dashboard.recent_predictions(coin=coin, limit=limit, url=url)
            trades = dashboard.recent_trades(coin=coin, limit=limit, url=url)
            if coin is None and coins:
                summary = overview(url)
        except dashboard.NoDatabase:
            coins = []
        except SQLAlchemyError as exc:
            return HTMLResponse(render("error.html", base=base, message=unavailable(exc).detail), 503)
        if not coins:
            return HTMLResponse(render("empty.html", base=base, database=describe_database(url), query=None))
        unknown = coin is not None and coin not in coins
        if coin:
            plotted = [coin]
        else:
            day_coins = [r["coin"] for r in summary.ranked] if summary else []
            first = [FIRST_COIN] if FIRST_COIN in coins else []
            newest = [p["coin"] for p in predictions]
            plotted = list(dict.fromkeys([*first, *day_coins, *newest]))[:MAX_PAGE_PLOTS]
        page = render(
            "index.html",
            base=base,
            coin=coin,
            limit=limit,
            max_limit=MAX_LIMIT,
            options=coins if coin is None or coin in coins else [*coins, coin],
            unknown_coin=unknown,
            plotted=[] if unknown else plotted,
            predictions=predictions,
            trades=trades,
            summary=summary,
            database=describe_database(url),
            query=query({"coin": coin, "limit": limit}),
        )
        return HTMLResponse(page)

    @app.get("/plot.png", response_class=Response)
    def plot(
        coin: str = Query(..., min_length=1, max_length=96, description="coin id, e.g. bitcoin"),
        days: int = Query(180, ge=2, le=3650, description="closes to show"),
        paths: int = Query(10, ge=0, le=100, description="newest forecast paths to draw"),
    ) -> Response:
        try:
            closes, predictions, trades = dashboard.coin_window(coin, days=days, max_paths=paths, url=url)
        except (dashboard.NoDatabase, LookupError):
            raise HTTPException(
                404, f"Unknown coin {coin!r}: no prices, predictions or trade requests are stored for it."
            ) from None
        except SQLAlchemyError as exc:
            raise unavailable(exc) from None
        png = render_plot(coin, closes, predictions, trades)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/predictions")
    def api_predictions(
        coin: str | None = Query(None, max_length=96),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        try:
            rows = dashboard.recent_predictions(coin=coin or None, limit=limit, url=url)
        except dashboard.NoDatabase:
            rows = []
        except SQLAlchemyError as exc:
            raise unavailable(exc) from None
        return {"predictions": [_json_row(r) for r in rows], "count": len(rows)}

    @app.get("/api/trades")
    def api_trades(
        coin: str | None = Query(None, max_length=96),
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        try:
            rows = dashboard.recent_trades(coin=coin or None, limit=limit, url=url)
        except dashboard.NoDatabase:
            rows = []
        except SQLAlchemyError as exc:
            raise unavailable(exc) from None
        return {"trades": [_json_row(r) for r in rows], "count": len(rows)}

    return app


# ------------------------------------------------------------------------------------- Airflow glue


def airflow_auth_dependencies() -> list[Any]:
    """Airflow's own access check, as FastAPI dependencies for a plugin app.

    The api-server mounts plugin apps with ``app.mount()`` and applies none of its authentication
    to them, so the app checks it itself: a valid Airflow JWT (the UI's ``_token`` cookie, which the
    browser sends to the iframe, or an ``Authorization: Bearer`` header) of a user allowed to see
    the Plugins view (401 without a token, 403 without the permission). Imported here, not at module
    level: it needs a configured Airflow and an initialised auth manager (the api-server has both).
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends

    return [Depends(requires_access_view(AccessView.PLUGINS))]


def create_plugin_app() -> FastAPI:
    """The app the Airflow plugin mounts: the project database from the environment, Airflow auth."""
    return create_app(dependencies=airflow_auth_dependencies())

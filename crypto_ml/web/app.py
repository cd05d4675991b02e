"""FastAPI app: recent predictions and trade requests (HTML page, JSON) and a plot per coin (PNG).

Routes (relative to wherever the app is mounted; the Airflow plugin mounts it at ``/crypto-ml``):

``GET /``
    HTML page: predictions newest first with their trade decision, trade requests newest first, and
    the plot of the selected coin (or of the coins on the page). ``?coin=`` filters, ``?limit=``
    caps each table (default 50).
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
import html
import io
import logging
import math
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine, inspect, select, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from crypto_ml.config import airflow_home
from crypto_ml.storage import Prediction, Price, TradeRequest, database_url, get_engine

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
#: Plots shown on the unfiltered page (one per coin of the newest predictions).
MAX_PAGE_PLOTS = 4
#: Trade-request columns served; ``response`` (the broker's raw answer) is left out on purpose.
TRADE_COLUMNS = [
    "coin", "as_of", "model", "version", "horizon", "side", "quantity", "price", "expected_return",
    "broker", "status", "idempotency_key", "created_at", "updated_at",
]  # fmt: skip
PREDICTION_COLUMNS = [
    "coin", "as_of", "model", "version", "horizon", "values", "last_close", "expected_return",
    "intervals", "interval_method", "run_id", "created_at",
]  # fmt: skip
#: Interval levels drawn as bands around a forecast path (widest first) and their opacity.
BAND_LEVELS = (("95", 0.10), ("80", 0.20))
_KEY = ("coin", "as_of", "model", "version", "horizon")


# --------------------------------------------------------------------------------------- data access


class NoDatabase(Exception):
    """The project database does not exist yet or has no schema: nothing has been stored."""


def _engine(url: str | None) -> Engine:
    """The engine of the project database; :class:`NoDatabase` for a SQLite file that isn't there.

    Connecting would create an empty SQLite file, and a read-only view should not do that.
    """
    resolved = database_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        if not parsed.database.startswith("file:") and not os.path.exists(parsed.database):
            raise NoDatabase
    return get_engine(resolved)


def _require_tables(engine: Engine, *names: str) -> None:
    present = set(inspect(engine).get_table_names())
    if not set(names) <= present:
        raise NoDatabase


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


def known_coins(url: str | None = None) -> list[str]:
    """Coins with at least one prediction or trade request, sorted."""
    engine = _engine(url)
    _require_tables(engine, "predictions", "trade_requests")
    stmt = select(Prediction.coin).union(select(TradeRequest.coin))
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def recent_predictions(
    *, coin: str | None = None, limit: int = DEFAULT_LIMIT, url: str | None = None
) -> list[dict[str, Any]]:
    """Newest predictions first (by ``as_of``, then creation time), each with its ``trade`` or None."""
    engine = _engine(url)
    _require_tables(engine, "predictions", "trade_requests")
    stmt = select(Prediction.__table__)
    if coin is not None:
        stmt = stmt.where(Prediction.coin == coin)
    stmt = stmt.order_by(
        Prediction.as_of.desc(),
        Prediction.created_at.desc(),
        Prediction.coin,
        Prediction.model,
        Prediction.version.desc(),
        Prediction.horizon,
    ).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        trades: dict[tuple, dict[str, Any]] = {}
        if rows:
            key_cols = [TradeRequest.__table__.c[k] for k in _KEY]
            keys = [tuple(r[k] for k in _KEY) for r in rows]
            t_stmt = select(TradeRequest.__table__).where(tuple_(*key_cols).in_(keys))
            for t in conn.execute(t_stmt):
                t = dict(t._mapping)
                trades[tuple(t[k] for k in _KEY)] = {k: t[k] for k in TRADE_COLUMNS}
    for r in rows:
        r["trade"] = trades.get(tuple(r[k] for k in _KEY))
    return rows


def recent_trades(
    *, coin: str | None = None, limit: int = DEFAULT_LIMIT, url: str | None = None
) -> list[dict[str, Any]]:
    """Newest trade requests first (by ``as_of``, then last update); no broker responses."""
    engine = _engine(url)
    _require_tables(engine, "trade_requests")
    table = TradeRequest.__table__
    stmt = select(*(table.c[k] for k in TRADE_COLUMNS))
    if coin is not None:
        stmt = stmt.where(table.c.coin == coin)
    stmt = stmt.order_by(table.c.as_of.desc(), table.c.updated_at.desc(), table.c.coin).limit(limit)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def plot_data(
    coin: str, *, days: int = 180, max_paths: int = 10, url: str | None = None
) -> tuple[list[tuple[dt.date, float]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The coin's last ``days`` closes, its newest ``max_paths`` predictions and its trades in that window.

    Without prices the window is that of the predictions. Raises :class:`NoDatabase` when there is no
    schema, :class:`LookupError` when nothing at all is stored for ``coin``.
    """
    engine = _engine(url)
    _require_tables(engine, "prices", "predictions", "trade_requests")
    with engine.connect() as conn:
        closes = [
            (d, c)
            for d, c in conn.execute(
                select(Price.date, Price.close)
                .where(Price.coin == coin)
                .order_by(Price.date.desc())
                .limit(days)
            )
        ][::-1]
        start = closes[0][0] if closes else None
        p_stmt = select(Prediction.__table__).where(Prediction.coin == coin)
        t_table = TradeRequest.__table__
        t_stmt = select(*(t_table.c[k] for k in TRADE_COLUMNS)).where(t_table.c.coin == coin)
        if start is not None:
            p_stmt = p_stmt.where(Prediction.as_of >= start)
            t_stmt = t_stmt.where(t_table.c.as_of >= start)
        p_stmt = p_stmt.order_by(Prediction.as_of.desc(), Prediction.created_at.desc()).limit(max_paths)
        predictions = [dict(r._mapping) for r in conn.execute(p_stmt)][::-1]
        if start is None and predictions:
            t_stmt = t_stmt.where(t_table.c.as_of >= predictions[0]["as_of"])
        trades = [dict(r._mapping) for r in conn.execute(t_stmt.order_by(t_table.c.as_of))]
        if not closes and not predictions and not trades:
            # Maybe the coin only has trades/predictions outside the window: it still exists.
            exists = conn.execute(
                select(Prediction.coin).where(Prediction.coin == coin).union(
                    select(TradeRequest.coin).where(TradeRequest.coin == coin)
                )
            ).first()
            if exists is None:
                raise LookupError(coin)
    return closes, predictions, trades


# --------------------------------------------------------------------------------------------- plot


def render_plot(
    coin: str,
    closes: Sequence[tuple[dt.date, float]],
    predictions: Sequence[dict[str, Any]],
    trades: Sequence[dict[str, Any]],
) -> bytes:
    """PNG of closes (solid), forecast paths (dashed, from ``(as_of, last_close)``) with their 80 %
    and 95 % prediction intervals (shaded bands, when stored), and trades."""
    # The object-oriented API with the Agg canvas: no pyplot, no global backend state, thread-safe.
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if closes:
        ax.plot([d for d, _ in closes], [c for _, c in closes], color="#1f2937", lw=1.6, label="close")
    palette = ["#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c"]
    colours: dict[str, str] = {}
    banded: dict[str, set[str]] = {}
    for p in predictions:
        first = p["model"] not in colours
        colour = colours.setdefault(p["model"], palette[len(colours) % len(palette)])
        days = [p["as_of"] + dt.timedelta(days=i) for i in range(len(p["values"]) + 1)]
        values = [p["last_close"], *(_finite(v) for v in p["values"])]
        ax.plot(days, values, ls="--", lw=1.2, alpha=0.85, color=colour,
                label=f"forecast: {p['model']}" if first else "_nolegend_")  # fmt: skip
        for level, alpha in BAND_LEVELS:
            band = (p.get("intervals") or {}).get(level)
            if not band or len(band["lower"]) != len(p["values"]):
                continue
            seen = banded.setdefault(p["model"], set())
            label = "_nolegend_" if level in seen else f"{level}% interval: {p['model']}"
            seen.add(level)
            ax.fill_between(days, [p["last_close"], *(_finite(v) for v in band["lower"])],
                            [p["last_close"], *(_finite(v) for v in band["upper"])],
                            color=colour, alpha=alpha, lw=0, label=label)  # fmt: skip
        ax.plot([p["as_of"]], [p["last_close"]], "o", ms=3, color=colour, label="_nolegend_")
    for side, marker, colour in (("buy", "^", "#16a34a"), ("sell", "v", "#dc2626")):
        points = [(t["as_of"], t["price"]) for t in trades if t["side"] == side]
        if points:
            ax.scatter([d for d, _ in points], [y for _, y in points], marker=marker, s=80, color=colour,
                       edgecolor="white", linewidth=0.8, zorder=5, label=side)  # fmt: skip
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(f"{coin}: recent closes and forecast paths", parse_math=False)
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    if not closes and not predictions and not trades:
        ax.text(0.5, 0.5, "nothing stored in this window", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="upper left", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ------------------------------------------------------------------------------------- HTML helpers


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _num(x: Any) -> str:
    x = _finite(x)
    if x is None:
        return "—"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4g}"


def _pct(x: Any) -> str:
    x = _finite(x)
    return "—" if x is None else f"{x * 100:+.2f}%"


def _when(x: Any) -> str:
    if isinstance(x, dt.datetime):
        return x.strftime("%Y-%m-%d %H:%M")
    return "" if x is None else str(x)


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _signed_class(x: Any) -> str:
    x = _finite(x)
    return "" if x is None or x == 0 else ("up" if x > 0 else "down")


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1rem 1.5rem;color:#111827}
h1{font-size:1.35rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
form{display:flex;gap:1rem;align-items:end;flex-wrap:wrap;margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.8rem;color:#374151}
select,input,button{font:inherit;padding:.25rem .4rem}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{padding:.3rem .55rem;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
th{background:#f3f4f6;position:sticky;top:0}td.n{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#15803d}.down{color:#b91c1c}.muted{color:#6b7280}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots img{max-width:100%;border:1px solid #e5e7eb}
.empty{padding:1.5rem;border:1px dashed #9ca3af;border-radius:.5rem;background:#f9fafb}
footer{margin-top:2rem;font-size:.75rem;color:#6b7280}
"""


def _page(base: str, body: str, title: str = "Crypto-ML: predictions and trades") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<base href=\"{_e(base)}\"><title>{_e(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{_e(title)}</h1>\n{body}\n</body></html>\n"
    )


def _base_href(request: Request) -> str:
    """Path the app is mounted at, with a trailing slash: relative links resolve against it."""
    return str(request.scope.get("root_path") or "").rstrip("/") + "/"


def _filter_form(coins: Sequence[str], coin: str | None, limit: int) -> str:
    options = ['<option value="">all coins</option>']
    for c in coins if coin is None or coin in coins else [*coins, coin]:
        selected = " selected" if c == coin else ""
        options.append(f'<option value="{_e(c)}"{selected}>{_e(c)}</option>')
    return (
        '<form method="get" action="./">'
        f'<label>Coin<select name="coin">{"".join(options)}</select></label>'
        '<label>Rows per table<input type="number" name="limit" min="1" '
        f'max="{MAX_LIMIT}" value="{limit}"></label>'
        '<button type="submit">Show</button></form>'
    )


def _trade_cell(trade: dict[str, Any] | None) -> str:
    if trade is None:
        return '<td class="muted">no trade request</td>'
    cls = "up" if trade["side"] == "buy" else "down"
    return (
        f'<td><span class="{cls}">{_e(trade["side"])}</span> {_e(_num(trade["quantity"]))} @ '
        f'{_e(_num(trade["price"]))} — <b>{_e(trade["status"])}</b></td>'
    )


def _predictions_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No predictions.</p>'
    head = (
        "<tr><th>As of</th><th>Coin</th><th>Model</th><th>Version</th><th>Horizon (days)</th>"
        "<th>Last close</th><th>Forecast close</th><th>Expected return</th>"
        "<th>80% interval</th><th>95% interval</th><th>Decision / trade</th>"
        "<th>Created</th></tr>"
    )
    body = []
    for r in rows:
        final = r["values"][-1] if r["values"] else None
        body.append(
            "<tr>"
            f"<td>{_e(r['as_of'])}</td><td>{_e(r['coin'])}</td><td>{_e(r['model'])}</td>"
            f'<td class="n">{_e(r["version"])}</td><td class="n">{_e(r["horizon"])}</td>'
            f'<td class="n">{_e(_num(r["last_close"]))}</td><td class="n">{_e(_num(final))}</td>'
            f'<td class="n {_signed_class(r["expected_return"])}">{_e(_pct(r["expected_return"]))}</td>'
            f'<td class="n">{_e(_interval(r, "80"))}</td><td class="n">{_e(_interval(r, "95"))}</td>'
            f"{_trade_cell(r.get('trade'))}<td>{_e(_when(r['created_at']))}</td>"
            "</tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _interval(row: dict[str, Any], level: str) -> str:
    """The stored interval of the forecast close at the horizon, e.g. ``3,210 – 4,120``."""
    band = (row.get("intervals") or {}).get(level)
    if not band or not band.get("lower"):
        return "—"
    return f"{_num(band['lower'][-1])} – {_num(band['upper'][-1])}"


def _trades_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No trade requests.</p>'
    head = (
        "<tr><th>As of</th><th>Coin</th><th>Model</th><th>Version</th><th>Horizon</th><th>Side</th>"
        "<th>Quantity</th><th>Price</th><th>Expected return</th><th>Broker</th><th>Status</th>"
        "<th>Idempotency key</th><th>Updated</th></tr>"
    )
    body = []
    for t in rows:
        side_cls = "up" if t["side"] == "buy" else "down"
        body.append(
            "<tr>"
            f"<td>{_e(t['as_of'])}</td><td>{_e(t['coin'])}</td><td>{_e(t['model'])}</td>"
            f'<td class="n">{_e(t["version"])}</td><td class="n">{_e(t["horizon"])}</td>'
            f'<td class="{side_cls}">{_e(t["side"])}</td><td class="n">{_e(_num(t["quantity"]))}</td>'
            f'<td class="n">{_e(_num(t["price"]))}</td>'
            f'<td class="n {_signed_class(t["expected_return"])}">{_e(_pct(t["expected_return"]))}</td>'
            f"<td>{_e(t['broker'])}</td><td><b>{_e(t['status'])}</b></td>"
            f"<td><code>{_e(t['idempotency_key'])}</code></td><td>{_e(_when(t['updated_at']))}</td>"
            "</tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _plots(coins: Sequence[str]) -> str:
    figures = [
        f'<figure><img src="plot.png?{_e(_query(coin=c))}" alt="{_e(c)}: closes, forecasts and trades" '
        f'loading="lazy" width="1000" height="460"><figcaption class="muted">{_e(c)}</figcaption></figure>'
        for c in coins
    ]
    return f'<div class="plots">{"".join(figures)}</div>' if figures else ""


def _footer(url: str | None, query: str | None = None) -> str:
    links = ""
    if query is not None:
        links = (
            f' · JSON: <a href="api/predictions?{_e(query)}">predictions</a>, '
            f'<a href="api/trades?{_e(query)}">trades</a>'
        )
    return f"<footer>Project database: {_e(describe_database(url))}{links}</footer>"


EMPTY = (
    '<div class="empty"><p><b>No predictions yet — run the pipeline.</b></p>'
    "<p>This page lists the forecasts the Crypto-ML DAGs store in the project database and the trade "
    "requests made from them. Ingest prices, train and predict (trigger the Crypto-ML DAGs in "
    "Airflow), then come back here.</p></div>"
)


# ---------------------------------------------------------------------------------------------- app


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dt.date | dt.datetime):
            out[k] = v.isoformat()
        elif isinstance(v, float):
            out[k] = _finite(v)
        elif isinstance(v, list):
            out[k] = [_finite(x) if isinstance(x, float) else x for x in v]
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
        try:
            coins = known_coins(url)
            predictions = recent_predictions(coin=coin, limit=limit, url=url)
            trades = recent_trades(coin=coin, limit=limit, url=url)
        except NoDatabase:
            return HTMLResponse(_page(base, EMPTY + _footer(url)))
        except SQLAlchemyError as exc:
            err = unavailable(exc)
            return HTMLResponse(_page(base, f'<div class="empty"><p>{_e(err.detail)}</p></div>'), 503)
        if not coins:
            return HTMLResponse(_page(base, EMPTY + _footer(url)))
        parts = [_filter_form(coins, coin, limit)]
        if coin is not None and coin not in coins:
            parts.append(f'<p class="empty">No predictions or trade requests for <b>{_e(coin)}</b>.</p>')
        else:
            plotted = [coin] if coin else list(dict.fromkeys(p["coin"] for p in predictions))[:MAX_PAGE_PLOTS]
            parts.append(_plots(plotted))
        query = _query(coin=coin, limit=limit)
        parts += [
            f"<h2>Predictions <span class=\"muted\">({len(predictions)} newest first)</span></h2>",
            _predictions_table(predictions),
            f"<h2>Trade requests <span class=\"muted\">({len(trades)} newest first)</span></h2>",
            _trades_table(trades),
            _footer(url, query),
        ]
        return HTMLResponse(_page(base, "\n".join(parts)))

    @app.get("/plot.png", response_class=Response)
    def plot(
        coin: str = Query(..., min_length=1, max_length=96, description="coin id, e.g. bitcoin"),
        days: int = Query(180, ge=2, le=3650, description="closes to show"),
        paths: int = Query(10, ge=0, le=100, description="newest forecast paths to draw"),
    ) -> Response:
        try:
            closes, predictions, trades = plot_data(coin, days=days, max_paths=paths, url=url)
        except (NoDatabase, LookupError):
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
            rows = recent_predictions(coin=coin or None, limit=limit, url=url)
        except NoDatabase:
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
            rows = recent_trades(coin=coin or None, limit=limit, url=url)
        except NoDatabase:
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
    from fastapi import Depends

    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return [Depends(requires_access_view(AccessView.PLUGINS))]


def create_plugin_app() -> FastAPI:
    """The app the Airflow plugin mounts: the project database from the environment, Airflow auth."""
    return create_app(dependencies=airflow_auth_dependencies())

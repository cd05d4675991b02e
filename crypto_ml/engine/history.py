"""Where a request's closes come from: the ones it sent, the project database's, or the bundled data's."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.protocol import EngineInputError

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.engine.request import EngineRequest


def load_history(
    request: EngineRequest, loader: CryptoLoader | None, url: str | None = None
) -> tuple[str, Any, dt.date, Any]:
    """``(coin id, closes up to as_of, as_of, dates or None)`` of a request: the closes it sent, else
    those of the project database at ``url`` (``history="database"``), else the bundled dataset's
    (``loader``)."""
    import numpy as np

    if request.closes is not None:
        return request.coin, np.asarray(request.closes, dtype="float64"), request.as_of, None
    if request.history == "database":
        return stored_history(request.coin, request.as_of, url)
    from crypto_ml.data.loader import UnknownCoinError

    try:
        coin = loader.resolve(request.coin)
    except UnknownCoinError as exc:
        raise EngineInputError(str(exc)) from None
    closes, dates = loader.get_prices(coin, as_of=request.as_of)
    as_of = request.as_of if request.as_of is not None else dt.date.fromisoformat(str(dates[-1])[:10])
    return coin, closes, as_of, dates


def stored_history(coin: str, as_of: dt.date, url: str | None) -> tuple[str, Any, dt.date, Any]:
    """The closes of ``coin`` up to ``as_of`` stored in the project database (the pipeline's
    ``transform`` validated them before the request was sent); a row that is not a positive number
    is refused, naming the coin, the row and its day."""
    import numpy as np

    from crypto_ml.storage import database_url, load_closes

    resolved = database_url(url)
    dates, closes = load_closes(coin, as_of=as_of, url=resolved)
    for i, value in enumerate(closes):
        if value is None or not (math.isfinite(value) and value > 0):
            raise EngineInputError(
                f"coin {coin!r}: row {i} ({dates[i]}) of the project database has close {value!r}; "
                "prices must be positive numbers"
            )
    if not closes:
        raise EngineInputError(
            f"coin {coin!r}: no closes on or before {as_of.isoformat()} in the project database "
            f"{_redacted(resolved)} (history='database': the engine reads the database its "
            "workers are configured with, CRYPTO_ML_DATABASE_URL; is it the pipeline's?)"
        )
    return coin, np.asarray(closes, dtype="float64"), as_of, dates


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message
        return "(unparsable URL)"

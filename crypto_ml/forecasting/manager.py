"""``CryptoManager``: the talk's prediction loop over coins, on the forecaster contract.

>>> from crypto_ml.forecasting.manager import CryptoManager
>>> manager = CryptoManager(model="linear", horizon=10, store=False)
>>> manager.predict("bitcoin")                 # the next 10 closes
>>> manager.predict_all(["bitcoin", "neblio"]) # neblio is too short: see manager.skipped
>>> manager.print_predictions()                # bitcoin [[4952.28 5492.85 ...]]

A stored model (see :class:`~crypto_ml.storage.model_store.ModelStore`) is reused when it was trained on
exactly the data the manager sees (same last day and number of closes, same hyperparameters):
forecasters predict from the end of their training data, so an older model would forecast from a
stale close. Otherwise a model is trained and saved.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from crypto_ml.forecasting.base import BaseForecaster
from crypto_ml.forecasting.persistence import jsonable as _jsonable
from crypto_ml.forecasting.registry import DEFAULT_MODEL, make_forecaster

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.storage.model_store import ModelStore


class CryptoManager:
    """Forecast the next ``horizon`` closes of coins with one model.

    :param loader: a :class:`~crypto_ml.data.loader.CryptoLoader` (default: the bundled data,
        cut at ``as_of``).
    :param model: registry name of the forecaster (default :data:`DEFAULT_MODEL`).
    :param horizon: days to forecast.
    :param store: a :class:`~crypto_ml.storage.model_store.ModelStore`; ``None`` builds the default store
        on first use, ``False`` trains in memory and stores nothing.
    :param as_of: forecast from the data up to this day (default: all the loader's data).
    :param params: hyperparameters of the model.
    """

    def __init__(
        self,
        loader: CryptoLoader | None = None,
        model: str = DEFAULT_MODEL,
        horizon: int = 10,
        store: ModelStore | None | bool = None,
        as_of: Any = None,
        params: dict | None = None,
    ) -> None:
        self.loader = loader
        self.model = model
        self.horizon = horizon
        self.store = store
        self.as_of = as_of
        self.params = params
        #: coin -> reason, for coins that :meth:`predict_all` could not forecast.
        self.skipped: dict[str, str] = {}
        #: coin -> ``{"version": ..., "reused": bool}`` for the last forecasts.
        self.models_used: dict[str, dict] = {}
        #: coin -> ``(fitted forecaster, last day of its data)`` of the last forecasts.
        self.fitted: dict[str, tuple[BaseForecaster, Any]] = {}
        self._loader: CryptoLoader | None = None
        self._store: ModelStore | None | bool = None

    # -- lazily built collaborators ---------------------------------------------------------------
    def _get_loader(self) -> CryptoLoader:
        if self.loader is not None:
            return self.loader
        if self._loader is None:
            from crypto_ml.data.loader import CryptoLoader

            self._loader = CryptoLoader(as_of=self.as_of)
        return self._loader

    def _get_store(self) -> ModelStore | None:
        if self.store is False:
            return None
        if self.store is not None and self.store is not True:
            return self.store
        if self._store is None:
            from crypto_ml.storage.model_store import ModelStore

            self._store = ModelStore()
        return self._store  # type: ignore[return-value]

    def _new_forecaster(self) -> BaseForecaster:
        return make_forecaster(self.model, **dict(self.params or {}))

    # -- the talk's interface -------------------------------------------------------------------
    def predict(self, coin: str) -> np.ndarray:
        """The next ``horizon`` closes of ``coin`` (a :class:`ValueError` if it cannot be done)."""
        loader = self._get_loader()
        coin_id = loader.resolve(coin)
        closes, dates = loader.get_prices(coin_id, as_of=self.as_of)
        template = self._new_forecaster()  # validates the model name first
        if len(closes) < template.min_points():
            raise ValueError(
                f"{coin_id} has {len(closes)} closes; the {self.model} model needs at least "
                f"{template.min_points()}"
            )
        train_start, train_end = dates[0], dates[-1]
        store = self._get_store()
        forecaster, version, reused = None, None, False
        if store is not None:
            try:
                stored, info = store.load_with_info(coin_id, template.name, as_of=train_end)
            except LookupError:
                stored = None
            if (
                stored is not None
                and str(info["train_end"]) == str(np.datetime_as_string(train_end, unit="D"))
                and int(stored.n_obs_) == len(closes)
                and _jsonable(stored.get_params()) == _jsonable(template.get_params())
            ):
                forecaster, version, reused = stored, info["version"], True
        if forecaster is None:
            forecaster = template.fit(closes)
            if store is not None:
                version = store.save(
                    coin_id, template.name, forecaster, train_start=train_start, train_end=train_end
                )
        self.models_used[coin_id] = {"version": version, "reused": reused}
        self.fitted[coin_id] = (forecaster, train_end)
        return forecaster.predict(self.horizon)

    def predict_all(self, coins: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Forecast every coin (default: all of the loader's coins). Coins that cannot be
        forecast (too short, degenerate data) are left out of the result and listed with the
        reason in :attr:`skipped`; the loop goes on."""
        loader = self._get_loader()
        names = loader.get_crypto_names() if coins is None else list(coins)
        self.skipped = {}
        out: dict[str, np.ndarray] = {}
        for name in names:
            try:
                coin_id = loader.resolve(name)
                out[coin_id] = self.predict(coin_id)
            except KeyError as exc:  # UnknownCoinError
                self.skipped[str(name)] = str(exc.args[0]) if exc.args else str(exc)
            except ValueError as exc:
                self.skipped[str(name)] = str(exc)
        return out

    def print_predictions(self, coins: Iterable[str] | None = None, file: TextIO | None = None) -> None:
        """Print the forecasts as the talk did: ``bitcoin [[4952.28 5492.85 ...]]``."""
        file = file or sys.stdout
        predictions = self.predict_all(coins)
        for coin, values in predictions.items():
            text = np.array2string(
                np.asarray(values).reshape(1, -1),
                formatter={"float_kind": lambda v: f"{v:.2f}"},
                max_line_width=10**6,
            )
            print(coin, text, file=file)
        for coin, reason in self.skipped.items():
            print(f"{coin} skipped: {reason}", file=file)

    def prediction_table(self, coins: Iterable[str] | None = None, levels=(80, 95)):
        """One row per coin and forecast day: ``coin, date, forecast`` and, per level, the
        interval's ``lower``/``upper`` bounds (empty, with the reason in ``note``, when the model
        has none: too little data to calibrate). Coins that cannot be forecast are in
        :attr:`skipped`."""
        import datetime as dt

        import pandas as pd

        rows = []
        for coin, values in self.predict_all(coins).items():
            forecaster, last = self.fitted[coin]
            last_day = pd.Timestamp(last).date()
            try:
                bands, note = forecaster.predict_interval(self.horizon, levels=levels), ""
            except ValueError as exc:  # no interval: says why
                bands, note = {}, str(exc).split(";")[0]
            for step, value in enumerate(values):
                row = {
                    "coin": coin,
                    "date": (last_day + dt.timedelta(days=step + 1)).isoformat(),
                    "forecast": float(value),
                }
                for level in levels:
                    lo, hi = bands.get(level, bands.get(float(level), (None, None)))
                    row[f"lower{level}"] = None if lo is None else float(lo[step])
                    row[f"upper{level}"] = None if hi is None else float(hi[step])
                row["note"] = note if step == 0 else ""
                rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"CryptoManager(model={self.model!r}, horizon={self.horizon}, as_of={self.as_of!r})"

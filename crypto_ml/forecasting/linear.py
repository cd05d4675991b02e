"""Linear models: the talk's regression of price on time, and an AR model on log returns."""

from __future__ import annotations

import numpy as np

from crypto_ml.forecasting.base import BaseForecaster, recursive_forecast
from crypto_ml.forecasting.baselines import TrendWindowForecaster


class LinearTrendForecaster(TrendWindowForecaster):
    """The talk's linear regression of the close on the day number (sklearn ``LinearRegression``).

    :param window: fit only the last ``window`` days (``None``: the whole history).
    """

    name = "linear"
    _state_attrs = ("coef_", "intercept_", "t_end_")

    def _fit(self, y: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression

        y = self._window(y)
        t = np.arange(len(y), dtype="float64").reshape(-1, 1)
        reg = LinearRegression().fit(t, y)
        self.coef_ = float(reg.coef_[0])
        self.intercept_ = float(reg.intercept_)
        self.t_end_ = int(len(y) - 1)

    def _update(self, y: np.ndarray) -> None:
        if len(y) < self.n_fit_:
            raise ValueError(
                f"LinearTrendForecaster.update needs the series it was fitted on ({self.n_fit_} "
                f"closes) extended by newer days, got {len(y)} closes"
            )
        self.t_end_ = int(self.t_end_ + (len(y) - self.n_obs_))  # the line stays, time moves on

    def _predict(self, horizon: int) -> np.ndarray:
        t = self.t_end_ + np.arange(1, horizon + 1, dtype="float64")
        return self.intercept_ + self.coef_ * t


class AutoRegressiveForecaster(BaseForecaster):
    """Linear autoregression on daily log returns, ``r_t = c + sum_i a_i r_{t-i}``.

    Multi-step forecasts are recursive: each predicted return joins the lag window of the next
    step. Prices follow as ``last_close * exp(cumsum(returns))``.

    :param lags: number of lagged returns.
    :param min_train: the fewest training rows (lag vectors) to fit on; with ``lags`` this sets
        :meth:`min_points` = ``lags + min_train + 1`` closes.
    The interval settings (``calibration_origins``, ``interval_vol_ewm``, ...) are keyword
    parameters, as in :class:`~crypto_ml.forecasting.base.BaseForecaster`.
    """

    name = "ar"
    _log_model = True
    _needs_variation = True
    _state_attrs = ("coef_", "intercept_", "last_returns_")

    def __init__(
        self,
        lags: int = 5,
        min_train: int = 20,
        *,
        calibration_origins: int = 180,
        calibration_steps: int = 30,
        interval_vol_window: int = 0,
        interval_vol_ewm: float | None = 0.94,
        interval_aci_gamma: float | None = 0.005,
        interval_half_life: float | None = None,
        interval_log: bool = False,
        interval_aci_sides: bool = False,
    ) -> None:
        self.lags = lags
        self.min_train = min_train
        super().__init__(
            calibration_origins=calibration_origins,
            calibration_steps=calibration_steps,
            interval_vol_window=interval_vol_window,
            interval_vol_ewm=interval_vol_ewm,
            interval_aci_gamma=interval_aci_gamma,
            interval_half_life=interval_half_life,
            interval_log=interval_log,
            interval_aci_sides=interval_aci_sides,
        )

    def min_points(self) -> int:
        return int(self.lags) + int(self.min_train) + 1

    def _fit(self, y: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression

        lags = int(self.lags)
        if lags < 1:
            raise ValueError(f"lags must be >= 1, got {self.lags!r}")
        r = np.diff(np.log(y))
        x = np.lib.stride_tricks.sliding_window_view(r[:-1], lags)
        target = r[lags:]
        reg = LinearRegression().fit(x, target)
        self.coef_ = reg.coef_.astype("float64")
        self.intercept_ = float(reg.intercept_)
        self.last_returns_ = r[-lags:].astype("float64")

    def _update_points(self) -> int:
        return int(self.lags) + 1

    def _update(self, y: np.ndarray) -> None:
        self.last_returns_ = np.diff(np.log(y))[-int(self.lags) :].astype("float64")

    def _step(self, window: np.ndarray) -> float:
        return float(self.intercept_ + window @ self.coef_)

    def _predict(self, horizon: int) -> np.ndarray:
        returns = recursive_forecast(self._step, self.last_returns_, horizon)
        return self.last_value_ * np.exp(np.cumsum(returns))

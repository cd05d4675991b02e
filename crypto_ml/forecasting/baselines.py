"""Baselines every other model must beat: the random walk and the drift model."""

from __future__ import annotations

import numpy as np

from crypto_ml.forecasting.base import BaseForecaster


class NaiveForecaster(BaseForecaster):
    """Random walk: every future close equals the last known close."""

    name = "naive"

    def _fit(self, y: np.ndarray) -> None:
        pass  # the last value is kept by BaseForecaster.fit as ``last_value_``

    def _predict(self, horizon: int) -> np.ndarray:
        return np.full(horizon, self.last_value_)


class TrendWindowForecaster(BaseForecaster):
    """A straight line through the last ``window`` closes (``None``: all of them); a slope needs
    two points. The base of the drift and the linear-trend models.

    The interval settings (``calibration_origins``, ``interval_vol_ewm``, ...) are keyword
    parameters, as in :class:`~crypto_ml.forecasting.base.BaseForecaster`."""

    def __init__(
        self,
        window: int | None = None,
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
        self.window = window
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
        return 2 if self.window is None else max(2, int(self.window))

    def _window(self, y: np.ndarray) -> np.ndarray:
        return y if self.window is None else y[-max(2, int(self.window)) :]


class DriftForecaster(TrendWindowForecaster):
    """Random walk with drift: extend the straight line from the first to the last close.

    :param window: use only the last ``window`` closes for the slope (``None``: all of them).
    """

    name = "drift"
    _state_attrs = ("slope_",)

    def _fit(self, y: np.ndarray) -> None:
        y = self._window(y)
        self.slope_ = float((y[-1] - y[0]) / (len(y) - 1))

    def _predict(self, horizon: int) -> np.ndarray:
        return self.last_value_ + self.slope_ * np.arange(1, horizon + 1)

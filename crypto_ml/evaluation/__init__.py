"""Evaluation of the forecasters: how accurate they are, and whether trading on them pays.

Modules:

- :mod:`~crypto_ml.evaluation.backtest`: the walk-forward accuracy backtest (:func:`run_backtest`,
  per coin and model :func:`backtest_series`), its :class:`BacktestResult`;
- :mod:`~crypto_ml.evaluation.forecasts`: point-in-time daily forecasts for the strategy backtest;
- :mod:`~crypto_ml.evaluation.simulation`: the trading rule replayed on a paper ledger;
- :mod:`~crypto_ml.evaluation.strategy`: the strategy backtest (:func:`run_strategy`), its
  :class:`StrategyReport` and the rules compared by default;
- :mod:`~crypto_ml.evaluation.metrics`: accuracy, interval and trading metrics;
- :mod:`~crypto_ml.evaluation.reports` (Markdown) and :mod:`~crypto_ml.evaluation.plots` (PNG);
- :mod:`~crypto_ml.evaluation.units`: the per-coin x per-model units of work with JSON inputs and
  outputs, for running them elsewhere.

>>> from crypto_ml.evaluation import run_backtest, format_report
>>> print(format_report(run_backtest(["bitcoin", "ethereum"], ["naive", "linear"], folds=6)))
"""

from __future__ import annotations

from crypto_ml.evaluation.backtest import BacktestResult, backtest_series, run_backtest
from crypto_ml.evaluation.forecasts import forecast_days
from crypto_ml.evaluation.metrics import interval_score, score
from crypto_ml.evaluation.plots import plot_equity, plot_forecasts
from crypto_ml.evaluation.reports import format_report, format_strategy_report, markdown_table
from crypto_ml.evaluation.simulation import simulate
from crypto_ml.evaluation.strategy import StrategyReport, default_rules, run_strategy

__all__ = [
    "BacktestResult",
    "StrategyReport",
    "backtest_series",
    "default_rules",
    "forecast_days",
    "format_report",
    "format_strategy_report",
    "interval_score",
    "markdown_table",
    "plot_equity",
    "plot_forecasts",
    "run_backtest",
    "run_strategy",
    "score",
    "simulate",
]

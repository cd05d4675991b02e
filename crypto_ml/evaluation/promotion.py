"""Champion / challenger: a trained model version earns the right to trade.

At training (:func:`crypto_ml.engine.service.run_train`, the ``crypto_ml_train`` DAG) each new
version is evaluated **point in time** on the recent past it did not train on
(:func:`evaluate_version`): the model, fitted on the closes up to ``as_of - days``, forecasts each
of the ``days`` days after from the closes up to that day only (state moved on with ``update``,
no refit; it is fitted on the closes up to the window's first day), and is scored on them:

- accuracy: MAE of the ``horizon``-day forecast over the naive forecast's (last close) on the same
  days, ``mase_vs_naive`` (1.03 = 3 % worse than naive; the ratio of the two MASEs, whose scale
  cancels);
- intervals: per level, coverage (percent of actual closes inside), median width (percent of the
  close) and the Winkler interval score;
- the strategy: the pipeline's trading rule replayed on a paper ledger over the window, after fees
  and slippage (:func:`~crypto_ml.evaluation.simulation.simulate`): the coin's book return, maximum
  drawdown and hit rate, against never trading (return 0, drawdown 0).

:func:`verdict` then promotes the version only when it beats the coin's current champion by the
margins below, the champion being at first naive / no-trade. When the coin's champion is a version
of *another* model, the challenger must also beat that model evaluated on the same window
(:func:`evaluate_version` of the champion's model and params); a retrained version of the
champion's own model replaces it when it beats naive / no-trade. A coin has one champion: promoting
a version demotes the former one (:mod:`crypto_ml.storage.model_versions`, audited).

The margins are settings (``CRYPTO_ML_PROMOTION_*``, read only here, see :class:`PromotionSettings`):

=========================================  =======  ============================================
``CRYPTO_ML_PROMOTION_DAYS``               90       days of the evaluation window
``CRYPTO_ML_PROMOTION_MASE_MARGIN``        0.02     ``mase_vs_naive`` must be <= 1 - margin
``CRYPTO_ML_PROMOTION_RETURN_MARGIN``      0.005    return must beat no-trade (and the champion)
                                                    by this much over the window (0.005 = 0.5 %)
``CRYPTO_ML_PROMOTION_MAX_DRAWDOWN``       0.25     largest drawdown of the coin's book allowed
``CRYPTO_ML_PROMOTION_COVERAGE_TOLERANCE`` 15       each interval's coverage at most this many
                                                    points below nominal (when it has intervals;
                                                    too wide is recorded, not refused)
``CRYPTO_ML_PROMOTION_REQUIRED``           true     the coin pipeline trades only promoted
                                                    versions (false: the gate is off)
=========================================  =======  ============================================

Everything here takes and returns JSON-able values (closes as floats, dates as ISO strings, rules
as a dict of :class:`~crypto_ml.trading.rules.TradingRules` fields), so an engine worker can run it
from a message. Heavy imports (pandas, the models) are inside the functions.

>>> ev = evaluate_version("bitcoin", "drift", "2017-06-01", closes, dates)
>>> verdict(ev, PromotionSettings.from_env())
{'status': 'rejected', 'reason': 'not promoted: MASE 1.03× naive (needs <= 0.98×)', ...}
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from crypto_ml.settings import env_bool, env_float, env_int

ENV_DAYS = "CRYPTO_ML_PROMOTION_DAYS"
ENV_MASE_MARGIN = "CRYPTO_ML_PROMOTION_MASE_MARGIN"
ENV_RETURN_MARGIN = "CRYPTO_ML_PROMOTION_RETURN_MARGIN"
ENV_MAX_DRAWDOWN = "CRYPTO_ML_PROMOTION_MAX_DRAWDOWN"
ENV_COVERAGE_TOLERANCE = "CRYPTO_ML_PROMOTION_COVERAGE_TOLERANCE"
ENV_REQUIRED = "CRYPTO_ML_PROMOTION_REQUIRED"

#: The actor of the promotion changes made at training (the audit trail's "who").
TRAINING_ACTOR = "crypto_ml_train"


@dataclass(frozen=True)
class PromotionSettings:
    """The evaluation window and the margins of the promotion rule (see the module docstring)."""

    days: int = 90
    mase_margin: float = 0.02
    return_margin: float = 0.005
    max_drawdown: float = 0.25
    coverage_tolerance: float = 15.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PromotionSettings:
        """The settings from ``CRYPTO_ML_PROMOTION_*`` (unset: the defaults above)."""
        d = cls()
        return cls(
            days=env_int(ENV_DAYS, d.days, minimum=2, environ=environ),
            mase_margin=env_float(ENV_MASE_MARGIN, d.mase_margin, environ=environ),
            return_margin=env_float(ENV_RETURN_MARGIN, d.return_margin, environ=environ),
            max_drawdown=env_float(ENV_MAX_DRAWDOWN, d.max_drawdown, environ=environ),
            coverage_tolerance=env_float(ENV_COVERAGE_TOLERANCE, d.coverage_tolerance, environ=environ),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def promotion_required(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the coin pipeline trades only promoted versions (``CRYPTO_ML_PROMOTION_REQUIRED``,
    default true)."""
    return bool(env_bool(ENV_REQUIRED, True, environ=environ))


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def evaluate_version(
    coin: str,
    model: str,
    as_of: str | dt.date,
    closes: Sequence[float],
    dates: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    days: int = 90,
    horizon: int = 10,
    levels: Sequence[float] | None = None,
    rules: Mapping[str, Any] | None = None,
    fee_bps: float | None = None,
    slippage_bps: float | None = None,
) -> dict[str, Any]:
    """The point-in-time evaluation of ``model`` for ``coin`` on the ``days`` days up to ``as_of``.

    Only the closes up to ``as_of`` are used. The model is fitted once, on the closes before the
    window, and forecasts each day of the window from the closes up to that day. ``rules`` are
    the fields of the pipeline's :class:`~crypto_ml.trading.rules.TradingRules` (default: its
    defaults); fees and slippage default to the strategy backtest's (10 and 5 bps per side).

    Returns
    -------
    dict
        JSON-able: ``{coin, model, as_of, days, horizon, window_start, train_end, n_scored,
        mae, naive_mae, mase_vs_naive, intervals: {level: {coverage, median_width_pct,
        interval_score_pct, n}}, strategy: {total_return, max_drawdown, hit_rate, sharpe, trades,
        fees}, no_trade: {total_return, max_drawdown}, rule, fee_bps, slippage_bps}``; or, when
        the history is too short, ``{coin, model, as_of, days, error}``.
    """
    import numpy as np
    import pandas as pd

    from crypto_ml.evaluation.forecasts import check_series, forecast_days
    from crypto_ml.evaluation.metrics import interval_score, simulation_metrics
    from crypto_ml.evaluation.simulation import DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS, simulate
    from crypto_ml.forecasting import DEFAULT_LEVELS, check_horizon, level_key
    from crypto_ml.trading.rules import TradingRules

    horizon = check_horizon(horizon)
    if isinstance(days, bool) or not isinstance(days, int) or days < 2:
        raise ValueError(f"days must be an int >= 2, got {days!r}")
    levels = tuple(DEFAULT_LEVELS if levels is None else levels)
    fee_bps = DEFAULT_FEE_BPS if fee_bps is None else float(fee_bps)
    slippage_bps = DEFAULT_SLIPPAGE_BPS if slippage_bps is None else float(slippage_bps)
    rule = TradingRules(**dict(rules or {}))
    day = pd.Timestamp(as_of)
    y, idx = check_series(coin, closes, dates)
    keep = idx <= day
    y, idx = y[keep], idx[keep]
    head = {"coin": coin, "model": model, "as_of": day.date().isoformat(), "days": days, "horizon": horizon}
    if len(y) < days + 30:
        return {
            **head,
            "error": f"{len(y)} closes up to {day.date()}, fewer than the {days} days of the "
            f"window plus 30 to train on",
        }
    start = len(y) - days
    frame = forecast_days(
        model,
        y,
        idx,
        start=idx[start],
        coin=coin,
        horizon=horizon,
        levels=levels,
        refit_every=days + 1,
        params=params,
    )
    if frame.empty:
        return {**head, "error": f"{model} made no forecast in the window"}
    pos = idx.get_indexer(pd.DatetimeIndex(frame["date"]))
    target = pos + horizon
    scored = frame[target < len(y)].assign(actual=y[target[target < len(y)]])
    if scored.empty:
        return {**head, "error": f"the window of {days} days is shorter than the horizon ({horizon})"}
    mae = float(np.mean(np.abs(scored["forecast"] - scored["actual"])))
    naive_mae = float(np.mean(np.abs(scored["last_close"] - scored["actual"])))
    intervals = {}
    for level in levels:
        key = level_key(level)
        part = scored.dropna(subset=[f"lower_{key}", f"upper_{key}"])
        if part.empty:
            continue
        lo, hi, actual = part[f"lower_{key}"], part[f"upper_{key}"], part["actual"]
        intervals[key] = {
            "n": len(part),
            "coverage": float(((actual >= lo) & (actual <= hi)).mean() * 100),
            "median_width_pct": float(((hi - lo) / part["last_close"]).median() * 100),
            "interval_score_pct": float(
                np.mean(interval_score(lo, hi, actual, level) / part["last_close"].to_numpy()) * 100
            ),
        }
    prices = pd.DataFrame({coin: y[start:]}, index=idx[start:])
    sim = simulate(
        {coin: frame},
        prices,
        rule,
        model=model,
        rule="pipeline",
        horizon=horizon,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
    )
    _, per_coin = simulation_metrics(sim, rule.max_position_notional)
    book = per_coin.iloc[0]
    train_end = frame["train_end"].iloc[0]
    return {
        **head,
        "window_start": idx[start].date().isoformat(),
        "train_end": pd.Timestamp(train_end).date().isoformat(),
        "params": {k: v for k, v in dict(params or {}).items()},
        "n_scored": len(scored),
        "mae": mae,
        "naive_mae": naive_mae,
        "mase_vs_naive": _finite(mae / naive_mae) if naive_mae > 0 else None,
        "intervals": intervals,
        "strategy": {
            "total_return": _finite(book["total_return"]),
            "max_drawdown": _finite(book["max_drawdown"]),
            "hit_rate": _finite(book["hit_rate"]),
            "sharpe": _finite(book["sharpe"]),
            "trades": int(book["trades"]),
            "fees": _finite(book["fees"]),
        },
        "no_trade": {"total_return": 0.0, "max_drawdown": 0.0},
        "rule": rule.describe(),
        "fee_bps": fee_bps,
        "slippage_bps": slippage_bps,
    }


def verdict(
    evaluation: Mapping[str, Any],
    settings: PromotionSettings | None = None,
    *,
    champion: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Whether the evaluated version is promoted: ``{status: "promoted"|"rejected", reason}``.

    ``champion`` is the evaluation of the coin's champion *on the same window* (another model's
    version), or None when naive / no-trade is the champion. The reason of a rejection names
    every failed test, the first as in ``"not promoted: MASE 1.03× naive (needs <= 0.98×)"``.
    """
    s = settings or PromotionSettings()
    if evaluation.get("error"):
        return {"status": "rejected", "reason": f"not promoted: no evaluation ({evaluation['error']})"}
    failed: list[str] = []
    passed: list[str] = []
    ratio = evaluation.get("mase_vs_naive")
    need = 1.0 - s.mase_margin
    if ratio is None or ratio > need:
        failed.append(f"MASE {_x(ratio)} naive (needs <= {need:.2f}×)")
    else:
        passed.append(f"MASE {_x(ratio)} naive")
    strat = evaluation.get("strategy") or {}
    ret, dd = strat.get("total_return"), strat.get("max_drawdown")
    if ret is None or ret < s.return_margin:
        failed.append(f"return {_pct(ret)} vs no-trade 0.0% (needs >= +{s.return_margin * 100:.1f}%)")
    else:
        passed.append(f"return {_pct(ret)}")
    if dd is not None and dd > s.max_drawdown:
        failed.append(f"drawdown {dd * 100:.1f}% (at most {s.max_drawdown * 100:.0f}%)")
    for key, band in (evaluation.get("intervals") or {}).items():
        floor = float(key) - s.coverage_tolerance  # bands that promise more than they hold
        if band["coverage"] < floor:
            failed.append(f"{key}% coverage {band['coverage']:.0f}% (needs >= {floor:g}%)")
    if champion is not None and not champion.get("error"):
        name = champion.get("model", "champion")
        theirs = champion.get("mase_vs_naive")
        if ratio is not None and theirs is not None and ratio > theirs * (1.0 - s.mase_margin):
            failed.append(f"MASE {_x(ratio)} naive vs champion {name} {_x(theirs)}")
        their_ret = (champion.get("strategy") or {}).get("total_return")
        if ret is not None and their_ret is not None and ret < their_ret + s.return_margin:
            failed.append(f"return {_pct(ret)} vs champion {name} {_pct(their_ret)}")
    if failed:
        return {"status": "rejected", "reason": "not promoted: " + "; ".join(failed)}
    over = "naive / no-trade" if champion is None else f"champion {champion.get('model')}"
    return {"status": "promoted", "reason": f"promoted over {over}: " + ", ".join(passed)}


def _x(ratio: float | None) -> str:
    return "n/a×" if ratio is None else f"{ratio:.2f}×"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def evaluate_and_record(
    store: Any,
    coin: str,
    model: str,
    version: int,
    as_of: Any,
    closes: Sequence[float],
    dates: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    settings: PromotionSettings | None = None,
) -> dict[str, Any]:
    """Evaluate a just-trained ``version`` and record the evaluation and its verdict with it in
    ``store`` (a :class:`~crypto_ml.storage.model_store.ModelStore`), once (a version already evaluated
    is returned unchanged). An evaluation the data does not allow (a ``ValueError``) is recorded
    as its ``error``, and the version is rejected with it. Returns the version's row."""
    row = store.info_version(coin, model, version)
    if row is not None and row.get("evaluation") is not None:
        return row
    s = settings or PromotionSettings.from_env()
    dates = [str(d)[:10] for d in dates]
    closes = [float(c) for c in closes]
    try:
        evaluation = evaluate_version(coin, model, as_of, closes, dates, params=params, days=s.days)
    except ValueError as exc:  # data the evaluation cannot use: the version stays unpromoted, saying why
        evaluation = {
            "coin": coin,
            "model": model,
            "as_of": str(as_of)[:10],
            "days": s.days,
            "error": str(exc),
        }
    champion_eval = None
    champ = store.champion(coin)
    if champ is not None and champ["model"] != model and not evaluation.get("error"):
        champion_eval = evaluate_version(
            coin, champ["model"], as_of, closes, dates, days=s.days, params=champ.get("params") or None
        )
        evaluation["champion"] = {
            "model": champ["model"],
            "version": champ["version"],
            "mase_vs_naive": champion_eval.get("mase_vs_naive"),
            "strategy": champion_eval.get("strategy"),
        }
    evaluation["settings"] = s.to_json()
    decided = verdict(evaluation, s, champion=champion_eval)
    return store.record_evaluation(
        coin,
        model,
        version,
        evaluation=evaluation,
        status=decided["status"],
        reason=decided["reason"],
        actor=TRAINING_ACTOR,
    )


def trade_refusal(row: Mapping[str, Any] | None, model: str, version: int) -> str | None:
    """Why the prediction of ``model`` v``version`` may not trade (``"not promoted: ..."``), or
    None when that version is promoted. ``row`` is the version's model-store row (None: unknown)."""
    if int(version) == 0:
        return f"not promoted: {model} was fitted on the fly (version 0), not trained and evaluated"
    if row is None:
        return f"not promoted: {model} v{version} is not in the model store"
    status = row.get("promotion")
    if status == "promoted":
        return None
    if status is None:
        return f"not promoted: {model} v{version} has no evaluation"
    reason = row.get("promotion_reason") or status
    return reason if reason.startswith("not promoted") else f"not promoted: {status} ({reason})"

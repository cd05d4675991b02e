"""Parsing and validation of daily OHLCV rows, shared by every data source.

Every source hands over a *raw* long frame (one row per coin and day, values as the source wrote
them) and :func:`parse_and_validate` turns it into a typed frame plus a :class:`ValidationReport`.
Rows that break a hard rule are **quarantined**: they leave the clean frame, and the report names
the coin, where the row came from (file and line, or URL and index), its date and the broken rule.
Soft findings (a gap of missing days, an open outside the day's range) are reported and the row
stays. One bad row never stops the other rows or the other coins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Columns of the canonical long frame, in order.
LONG_COLUMNS = ["coin", "name", "date", "open", "high", "low", "close", "volume", "market_cap"]
PRICE_COLUMNS = ["open", "high", "low", "close"]
NUMBER_COLUMNS = [*PRICE_COLUMNS, "volume", "market_cap"]
#: Columns a source must provide besides LONG_COLUMNS: where each row came from.
ORIGIN_COLUMNS = ["origin", "line"]

_MISSING_TOKENS = {"", "-", "null", "none", "nan", "n/a"}
_DATE_FORMATS = ("%Y-%m-%d", "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%Y/%m/%d")

ERROR = "error"
WARNING = "warning"


class DataValidationError(ValueError):
    """Raised in strict mode when a load has findings of severity ``error``."""


@dataclass(frozen=True)
class Finding:
    """One validation finding about one row (or one gap) of one coin."""

    coin: str
    rule: str
    severity: str
    message: str
    origin: str = ""
    line: int | None = None
    date: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        loc = self.origin or "?"
        if self.line is not None:
            loc = f"{loc} line {self.line}"
        return loc

    def __str__(self) -> str:
        day = f" {self.date}" if self.date else ""
        return f"{self.severity.upper()} {self.coin}{day} ({self.where}) [{self.rule}]: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "origin": self.origin,
            "line": self.line,
            "date": self.date,
            "raw": self.raw,
        }


@dataclass
class ValidationReport:
    """What a load found: every finding, and the quarantined rows."""

    findings: list[Finding] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    failed_coins: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def quarantined(self) -> int:
        return self.rows_in - self.rows_out

    def extend(self, other: ValidationReport) -> None:
        self.findings.extend(other.findings)
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.failed_coins.update(other.failed_coins)

    def counts_by_coin(self) -> pd.DataFrame:
        """Per coin: number of errors (quarantined rows) and warnings."""
        if not self.findings:
            return pd.DataFrame(columns=["errors", "warnings"], dtype=int)
        df = pd.DataFrame([(f.coin, f.severity) for f in self.findings], columns=["coin", "sev"])
        out = pd.crosstab(df["coin"], df["sev"])
        return out.reindex(columns=[ERROR, WARNING], fill_value=0).rename(
            columns={ERROR: "errors", WARNING: "warnings"}
        )

    def __str__(self) -> str:
        head = (
            f"{self.rows_in} rows read, {self.rows_out} kept, {self.quarantined} quarantined; "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        )
        if self.failed_coins:
            head += f"; {len(self.failed_coins)} coins failed to load"
        return head


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column as the sources write numbers.

    Returns (parsed floats, mask of garbage cells). ``"1,234"`` is 1234, ``"-"`` and ``""`` are
    missing (NaN, not garbage), ``"abc"``, ``"1.2.3"`` and infinities are garbage.
    """
    if pd.api.types.is_numeric_dtype(values.dtype):
        parsed = values.astype("float64")
    else:
        # Fast path in C for plain decimals; only the cells it cannot read go the slow way.
        parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    garbage = pd.Series(np.isinf(parsed.to_numpy()), index=values.index)
    failed = parsed.isna()
    if failed.any() and not pd.api.types.is_numeric_dtype(values.dtype):
        text = values[failed].astype("string").str.strip()
        missing = text.isna() | text.str.lower().isin(_MISSING_TOKENS)
        again = pd.to_numeric(text.str.replace(",", "", regex=False).where(~missing), errors="coerce").astype(
            "float64"
        )
        parsed.loc[failed] = again
        garbage.loc[failed] = (~missing & (again.isna() | np.isinf(again))).fillna(False).to_numpy(bool)
    return parsed.where(~garbage), garbage.astype(bool)


def _parse_dates(values: pd.Series) -> pd.Series:
    """Parse dates written as ISO, "Sep 22, 2017", "Sep 9, 2017" and a few other explicit forms."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.tz_localize(None).dt.normalize() if values.dt.tz else values.dt.normalize()
    text = values.astype("string").str.strip()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    todo = text.notna() & (text != "")
    for fmt in _DATE_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        out.loc[ok.index[ok]] = parsed[ok]
        todo.loc[ok.index[ok]] = False
    return out


def parse_and_validate(raw: pd.DataFrame) -> tuple[pd.DataFrame, ValidationReport]:
    """Parse a raw long frame and validate every row.

    ``raw`` has :data:`LONG_COLUMNS` plus :data:`ORIGIN_COLUMNS` (``synthetic`` optional), values
    as strings or numbers. Returns the clean typed frame, sorted by coin then date, and the report.
    """
    report = ValidationReport(rows_in=len(raw))
    if raw.empty:
        return _empty_frame(), report
    raw = raw.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "coin": raw["coin"].astype(str),
            "name": raw["name"].astype(str),
            "date": _parse_dates(raw["date"]),
        }
    )
    bad = pd.Series(False, index=raw.index)
    reasons: dict[int, list[tuple[str, str, str]]] = {}

    def flag(mask: pd.Series, rule: str, severity: str, describe) -> None:
        nonlocal bad
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        if severity == ERROR:
            bad = bad | mask
        for i in np.flatnonzero(mask.to_numpy()):
            reasons.setdefault(int(i), []).append((rule, severity, describe(int(i))))

    date_text = raw["date"].astype("string")
    flag(
        frame["date"].isna(),
        "date_invalid",
        ERROR,
        lambda i: f"date {date_text.iat[i]!r} is missing or not a date",
    )
    for col in NUMBER_COLUMNS:
        parsed, garbage = _parse_numbers(raw[col])
        frame[col] = parsed
        flag(
            garbage,
            "number_invalid",
            ERROR,
            lambda i, col=col: f"{col} {str(raw[col].iat[i])!r} is not a number",
        )
    for col in PRICE_COLUMNS:
        values = frame[col]
        flag(
            values.isna() & ~bad,
            "price_missing",
            ERROR,
            lambda i, col=col: f"{col} is missing ({str(raw[col].iat[i])!r})",
        )
        flag(
            values <= 0,
            "price_not_positive",
            ERROR,
            lambda i, col=col: f"{col} {frame[col].iat[i]:g} is not positive",
        )
    flag(
        frame["high"] < frame["low"],
        "high_below_low",
        ERROR,
        lambda i: f"high {frame['high'].iat[i]:g} is below low {frame['low'].iat[i]:g}",
    )
    flag(
        (frame["close"] < frame["low"]) | (frame["close"] > frame["high"]),
        "close_outside_range",
        ERROR,
        lambda i: (
            f"close {frame['close'].iat[i]:g} is outside "
            f"[low {frame['low'].iat[i]:g}, high {frame['high'].iat[i]:g}]"
        ),
    )
    flag(
        (frame["volume"] < 0) | (frame["market_cap"] < 0),
        "negative_amount",
        ERROR,
        lambda i: (
            f"volume {frame['volume'].iat[i]:g} / market cap {frame['market_cap'].iat[i]:g} is negative"
        ),
    )
    flag(
        ((frame["open"] < frame["low"]) | (frame["open"] > frame["high"])) & ~bad,
        "open_outside_range",
        WARNING,
        lambda i: (
            f"open {frame['open'].iat[i]:g} is outside "
            f"[low {frame['low'].iat[i]:g}, high {frame['high'].iat[i]:g}] (kept)"
        ),
    )
    # Duplicated (coin, date): identical copies collapse to one (warning); conflicting copies are
    # all quarantined, since there is no way to tell which one is right.
    key = frame[["coin", "date"]]
    dup_any = key.duplicated(keep=False) & frame["date"].notna() & ~bad
    if dup_any.any():
        values = frame.loc[dup_any, ["coin", "date", *NUMBER_COLUMNS]]
        n_variants = values.fillna(-1.0).drop_duplicates().groupby(["coin", "date"]).size()
        conflicting = key.merge(n_variants.rename("variants").reset_index(), on=["coin", "date"], how="left")[
            "variants"
        ].gt(1)
        conflicting.index = frame.index
        copies = dup_any & ~conflicting & key.duplicated(keep="first")
        flag(
            dup_any & conflicting,
            "date_duplicate",
            ERROR,
            lambda i: f"date {frame['date'].iat[i]:%Y-%m-%d} appears more than once with different values",
        )
        flag(
            copies,
            "date_duplicate_identical",
            WARNING,
            lambda i: f"date {frame['date'].iat[i]:%Y-%m-%d} repeats an identical row (copy dropped)",
        )
        bad = bad | copies

    for i, items in sorted(reasons.items()):
        row_raw = {c: _plain(raw[c].iat[i]) for c in LONG_COLUMNS}
        date = frame["date"].iat[i]
        for rule, severity, message in items:
            report.findings.append(
                Finding(
                    coin=str(raw["coin"].iat[i]),
                    rule=rule,
                    severity=severity,
                    message=message,
                    origin=str(raw["origin"].iat[i]),
                    line=int(raw["line"].iat[i]) if pd.notna(raw["line"].iat[i]) else None,
                    date=None if pd.isna(date) else f"{date:%Y-%m-%d}",
                    raw=row_raw,
                )
            )

    frame["synthetic"] = raw["synthetic"].astype(bool) if "synthetic" in raw else False
    clean = frame.loc[~bad].sort_values(["coin", "date"], kind="stable").reset_index(drop=True)
    report.findings.extend(_gap_findings(clean))
    report.rows_out = len(clean)
    return clean, report


def _gap_findings(clean: pd.DataFrame) -> list[Finding]:
    """Missing calendar days inside a coin's history (reported, never invented)."""
    if clean.empty:
        return []
    same_coin = clean["coin"].eq(clean["coin"].shift())
    step = clean["date"].diff().dt.days
    gaps = clean.index[same_coin & (step > 1)]
    out = []
    for i in gaps:
        prev, cur = clean["date"].iat[i - 1], clean["date"].iat[i]
        missing = int(step.iat[i]) - 1
        out.append(
            Finding(
                coin=clean["coin"].iat[i],
                rule="date_gap",
                severity=WARNING,
                message=(
                    f"{missing} missing day(s) between {prev:%Y-%m-%d} and {cur:%Y-%m-%d} "
                    "(reported, not filled)"
                ),
                date=f"{cur:%Y-%m-%d}",
            )
        )
    return out


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in LONG_COLUMNS})
    frame["coin"] = frame["coin"].astype(str)
    frame["name"] = frame["name"].astype(str)
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    frame["synthetic"] = pd.Series(dtype=bool)
    return frame

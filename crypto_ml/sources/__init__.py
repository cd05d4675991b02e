"""Where daily prices come from: one interface, several sources.

- :class:`BundledSource` — the real top-100 dataset shipped inside the package (default).
- :class:`CSVSource` — a directory, zip or file of CSVs: the talk's per-coin files (quirks and
  all) or the long normalised form.
- :class:`ExchangeSource` — live daily candles from any exchange ccxt supports, point in time.
- :class:`ReplaySource` — reveals another source's history one day at a time, so scheduled runs
  and backfills behave as if the data were arriving live.
- :class:`SyntheticSource` — adds clearly labelled synthetic coins for scale tests.
"""

from __future__ import annotations

import importlib

#: Where each name lives; imported on first use, so ``crypto_ml.sources.ids`` (the coin ids the
#: market settings parse with, at DAG parse time) costs no pandas.
_WHERE = {
    "BundledSource": "bundled",
    "CSVSource": "csv",
    "ExchangeSource": "exchange",
    "ReplaySource": "replay",
    "Source": "base",
    "SourceError": "base",
    "SyntheticSource": "synthetic",
    "resolve_source": "base",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"crypto_ml.sources.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'crypto_ml.sources' has no attribute {name!r}")

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

from crypto_ml.sources.base import Source, SourceError, resolve_source
from crypto_ml.sources.bundled import BundledSource
from crypto_ml.sources.csv import CSVSource
from crypto_ml.sources.exchange import ExchangeSource
from crypto_ml.sources.replay import ReplaySource
from crypto_ml.sources.synthetic import SyntheticSource

__all__ = [
    "BundledSource",
    "CSVSource",
    "ExchangeSource",
    "ReplaySource",
    "Source",
    "SourceError",
    "SyntheticSource",
    "resolve_source",
]

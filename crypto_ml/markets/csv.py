"""A folder of the user's own CSV files (``extra.path``), re-read every day."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crypto_ml.markets.base import Market, conn_field
from crypto_ml.markets.ids import CSV, MarketConfigError


@dataclass(frozen=True)
class CSVMarket(Market):
    """``crypto-ml-market://csv?path=/data/prices``: the files are the universe, each day."""

    name = CSV
    keys = frozenset({"path"})
    conn_fields = {
        "path": conn_field("CSV folder", "string", "csv: the folder of CSV files, re-read every day.")
    }

    @classmethod
    def from_extra(cls, host: str, extra: dict, *, origin: str) -> dict[str, Any]:
        if not extra.get("path"):
            raise MarketConfigError(f"{origin}: a csv market needs extra.path (the folder of CSV files)")
        return {"kind": CSV, "path": str(extra["path"])}

    @property
    def source_name(self) -> str:
        return f"csv:{self.path}"

    def describe(self) -> str:
        return f"CSV files in {self.path}"

    def source(self, day, *, stored=None, coins=None, now=None):
        from crypto_ml.sources.csv import CSVSource

        return CSVSource(self.path)

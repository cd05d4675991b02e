"""CSV sources: the talk's per-coin files (quirks and all) and the long normalised form."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from os import PathLike
from pathlib import Path

import pandas as pd

from crypto_ml.sources.base import Source, SourceError

__all__ = ["CSVSource", "read_long_csv", "read_per_coin_csv", "slugify"]

#: Header of the talk's per-coin files.
PER_COIN_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume", "Market Cap"]
_RENAME = {
    "Date": "date",
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
    "Market Cap": "market_cap",
}


def slugify(name: str) -> str:
    """``"Bitcoin Cash"`` → ``"bitcoin-cash"``: the id of a bundled or CSV coin (a per-coin
    file's name)."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")


def read_long_csv(handle, origin: str) -> pd.DataFrame:
    """Read the long form (``coin,name,date,open,...``) keeping every value as written."""
    raw = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False)
    missing = {"coin", "date", "open", "high", "low", "close"} - set(raw.columns)
    if missing:
        raise SourceError(f"{origin}: not a long price CSV, missing columns {sorted(missing)}")
    for col in ("name", "volume", "market_cap"):
        if col not in raw:
            raw[col] = ""
    if (raw["name"] == "").all():
        raw["name"] = raw["coin"]
    raw["origin"] = origin
    raw["line"] = range(2, len(raw) + 2)
    return raw


def read_per_coin_csv(handle, origin: str, coin_name: str) -> pd.DataFrame:
    """Read one of the talk's per-coin files (``Date,Open,...,Market Cap``, newest first)."""
    raw = pd.read_csv(handle, dtype=str, keep_default_na=False, na_filter=False)
    raw.columns = [c.strip() for c in raw.columns]
    missing = set(PER_COIN_COLUMNS[:5]) - set(raw.columns)
    if missing:
        raise SourceError(
            f"{origin}: not a per-coin price CSV, missing columns {sorted(missing)} "
            f"(expected {PER_COIN_COLUMNS})"
        )
    raw = raw.rename(columns=_RENAME)
    for col in ("volume", "market_cap"):
        if col not in raw:
            raw[col] = ""
    raw.insert(0, "coin", slugify(coin_name))
    raw.insert(1, "name", coin_name)
    raw["origin"] = origin
    raw["line"] = range(2, len(raw) + 2)
    return raw


def _read_any(data: bytes, origin: str, stem: str) -> pd.DataFrame | None:
    first = data[:200].decode("utf-8", "replace").lstrip("\ufeff").splitlines()[:1]
    header = first[0] if first else ""
    cols = [c.strip().strip('"') for c in header.split(",")]
    if "coin" in cols:
        return read_long_csv(io.BytesIO(data), origin)
    if "Date" in cols and "Close" in cols:
        return read_per_coin_csv(io.BytesIO(data), origin, stem)
    return None  # not a price file (e.g. the ranking snapshot "100 List.csv")


class CSVSource(Source):
    """Prices from CSV files in the talk's per-coin format or the long normalised format.

    :param path: a directory of ``<Coin Name>.csv`` files, a ``.zip`` of them (e.g. the original
        ``top100_raw.zip``), one per-coin file, or one long CSV (optionally ``.gz``).
    """

    def __init__(self, path: str | PathLike) -> None:
        self.path = Path(path)
        self.name = f"csv:{self.path.name}"

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        path = self.path
        if not path.exists():
            raise SourceError(f"price data not found: {path}")
        frames: list[pd.DataFrame] = []
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".csv", ".gz"})
            for p in files:
                frame = _read_any(_read_bytes(p), str(p.relative_to(path)), _stem(p))
                if frame is not None:
                    frames.append(frame)
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                for info in sorted(zf.infolist(), key=lambda i: i.filename):
                    if info.is_dir() or not info.filename.lower().endswith(".csv"):
                        continue
                    frame = _read_any(zf.read(info), info.filename, _stem(Path(info.filename)))
                    if frame is not None:
                        frames.append(frame)
        else:
            frame = _read_any(_read_bytes(path), path.name, _stem(path))
            if frame is None:
                raise SourceError(f"{path}: not a price CSV (no coin/Date/Close header)")
            frames.append(frame)
        if not frames:
            raise SourceError(f"no price CSV files found in {path}")
        return pd.concat(frames, ignore_index=True)

    def coin_metadata(self) -> pd.DataFrame:
        """Names and symbols of the bundled coins (the same top-100 set, by coin id)."""
        from crypto_ml.sources.bundled import BundledSource

        return BundledSource().coin_metadata()


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        import gzip

        data = gzip.decompress(data)
    return data

"""Versioned storage of fitted forecasters: files on disk, metadata in the project database.

Artifacts live under ``<root>/<coin>/<model>/v<version>/`` (``root`` defaults to
``artifacts_dir("models")``): ``forecaster.json`` (params and learned state) and, for the LSTM,
``model.keras``. No pickle anywhere. The metadata row is written with
:func:`crypto_ml.storage.record_model_version`, which is idempotent on
``(coin, model, train_end, fingerprint)``; the fingerprint hashes the model name, its params,
the training window and the number of observations, so saving the same training twice returns the
same version and writes nothing new.

>>> store = ModelStore(url="sqlite:///models.db")
>>> version = store.save("bitcoin", "linear", fitted, train_start="2013-04-28", train_end="2017-01-01")
>>> store.load("bitcoin", "linear", as_of="2017-03-01")    # newest version trained on data <= as_of
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from crypto_ml.forecasting.base import BaseForecaster, _jsonable, load_forecaster


def _day(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def fingerprint(model: str, params: dict, train_start: Any, train_end: Any, n_obs: int) -> str:
    """A stable hash of what defines one training run."""
    payload = json.dumps(
        {
            "model": model,
            "params": _jsonable(params),
            "train_start": str(_day(train_start)),
            "train_end": str(_day(train_end)),
            "n_obs": int(n_obs),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class ModelStore:
    """Save and load fitted forecasters per (coin, model), versioned by training window.

    :param root: artifact folder (default ``artifacts_dir("models")``, resolved on first use).
    :param url: database URL (default :func:`crypto_ml.storage.database_url`).
    """

    def __init__(self, root: str | Path | None = None, url: str | None = None) -> None:
        self.root = root
        self.url = url
        self._migrated = False

    # -- helpers --------------------------------------------------------------------------------
    @property
    def root_path(self) -> Path:
        if self.root is not None:
            path = Path(self.root)
            path.mkdir(parents=True, exist_ok=True)
            return path
        from crypto_ml.config import artifacts_dir

        return artifacts_dir("models")

    def _db(self):
        from crypto_ml import storage

        if not self._migrated:
            storage.migrate(self.url)
            self._migrated = True
        return storage

    def _version_dir(self, coin: str, model: str, version: int) -> Path:
        return self.root_path / coin / model / f"v{int(version)}"

    # -- API ------------------------------------------------------------------------------------
    def save(
        self,
        coin: str,
        model: str,
        forecaster: BaseForecaster,
        *,
        train_start: Any,
        train_end: Any,
        metrics: dict | None = None,
    ) -> int:
        """Store a fitted forecaster; returns its version (the existing one if already saved)."""
        if not forecaster.__sklearn_is_fitted__():
            raise ValueError(f"cannot store an unfitted {type(forecaster).__name__}")
        storage = self._db()
        params = _jsonable(forecaster.get_params(deep=False))
        n_obs = int(forecaster.n_obs_)
        fp = fingerprint(model, params, train_start, train_end, n_obs)
        parent = self.root_path / coin / model
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".staging-{uuid.uuid4().hex}"
        forecaster.save(staging)
        try:
            latest = storage.latest_model_version(coin, model, url=self.url)
            guess = (latest["version"] if latest else 0) + 1
            version = storage.record_model_version(
                coin=coin,
                model=model,
                train_start=_day(train_start),
                train_end=_day(train_end),
                n_obs=n_obs,
                params=params,
                metrics=_jsonable(metrics or {}),
                artifact_path=str(self._version_dir(coin, model, guess)),
                fingerprint=fp,
                url=self.url,
            )
            target = self._version_dir(coin, model, version)
            if not target.exists():
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return int(version)

    def info(self, coin: str, model: str, as_of: Any = None) -> dict | None:
        """Metadata of the newest version trained on data up to ``as_of`` (``None``: any)."""
        day = None if as_of is None else _day(as_of)
        return self._db().latest_model_version(coin, model, as_of=day, url=self.url)

    def load_with_info(self, coin: str, model: str, as_of: Any = None) -> tuple[BaseForecaster, dict]:
        """``(forecaster, metadata)`` of the newest version trained on data up to ``as_of``."""
        row = self.info(coin, model, as_of)
        if row is None:
            when = f" trained on data up to {_day(as_of)}" if as_of is not None else ""
            raise LookupError(f"no stored {model!r} model for {coin!r}{when} in {self.url or 'the default database'}")
        path = self._version_dir(coin, model, row["version"])
        if not path.exists() and row.get("artifact_path"):
            path = Path(row["artifact_path"])
        if not path.exists():
            raise LookupError(
                f"{model!r} model v{row['version']} for {coin!r} is recorded but its files are "
                f"missing ({path})"
            )
        return load_forecaster(path), row

    def load(self, coin: str, model: str, as_of: Any = None) -> BaseForecaster:
        """The newest version trained on data up to ``as_of``; :class:`LookupError` if none."""
        return self.load_with_info(coin, model, as_of)[0]

    def __repr__(self) -> str:
        return f"ModelStore(root={self.root!r}, url={self.url!r})"

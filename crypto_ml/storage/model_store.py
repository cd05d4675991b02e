"""Versioned storage of fitted forecasters, shared by every host through one URL.

Where the artifacts go is one setting, ``CRYPTO_ML_MODEL_STORE_URL`` (read only here):

=============================  ===================================================================
``database``                   the project database (``CRYPTO_ML_DATABASE_URL``; PostgreSQL in
                               production), table ``model_artifacts``: nothing to mount anywhere
``s3://bucket/prefix``,        object storage through fsspec (the library under Airflow's
``gs://...``, ``file:///...``  ``ObjectStoragePath``; the protocol's package must be installed,
                               e.g. ``s3fs`` for ``s3://``)
unset                          ``file://$CRYPTO_ML_HOME/models``: local disk, the embedded
                               default for one machine only
=============================  ===================================================================

The metadata row (:func:`crypto_ml.storage.record_model_version`) is always in the project
database and is idempotent on ``(coin, model, train_end, fingerprint)``; the fingerprint hashes
the model name, its params, the training window and the number of observations.

**Atomic writes.** A training run's files are written under its fingerprint *before* the version
row that points at them exists, so no reader can find a version whose files are incomplete:

- ``database``: every file in one transaction;
- object storage / disk: the files under ``<base>/<coin>/<model>/<fingerprint>/``, then
  ``MANIFEST.json`` (each file's size and SHA-256) last, as the commit marker (one object PUT is
  atomic on object stores; on disk it is written to a temporary name and renamed).

A reader fetches the files into a private cache (``$CRYPTO_ML_HOME/model-cache``, renamed into
place only when complete) and checks every checksum, so it never loads half an artifact. No pickle
anywhere: JSON state and, for the LSTM, the Keras native ``model.keras``.

>>> store = ModelStore(url="postgresql://.../crypto_ml", location="database")
>>> version = store.save("bitcoin", "linear", fitted, train_start="2013-04-28", train_end="2017-01-01")
>>> store.load("bitcoin", "linear", as_of="2017-03-01")    # newest version trained on data <= as_of

**Promotion.** Each version keeps the evaluation made at its training and its promotion status
(:meth:`ModelStore.record_evaluation`, :mod:`crypto_ml.evaluation.promotion`); a status can be
changed by hand, audited (:meth:`ModelStore.set_promotion`, :meth:`ModelStore.promotion_history`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from crypto_ml.forecasting import BaseForecaster, load_forecaster
from crypto_ml.forecasting.persistence import jsonable as _jsonable
from crypto_ml.settings import env_str
from crypto_ml.utils.dates import as_date

#: The one setting of where model artifacts live (see the module docstring).
ENV_MODEL_STORE = "CRYPTO_ML_MODEL_STORE_URL"
DATABASE = "database"
MANIFEST = "MANIFEST.json"


class ArtifactError(LookupError):
    """A recorded model version whose artifact is missing, incomplete or corrupt."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(model: str, params: dict, train_start: Any, train_end: Any, n_obs: int) -> str:
    """A stable hash of what defines one training run."""
    payload = json.dumps(
        {
            "model": model,
            "params": _jsonable(params),
            "train_start": str(as_date(train_start)),
            "train_end": str(as_date(train_end)),
            "n_obs": int(n_obs),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def model_store_location(location: str | None = None) -> str:
    """The artifact location: ``location``, else ``$CRYPTO_ML_MODEL_STORE_URL``, else
    ``file://$CRYPTO_ML_HOME/models``. ``db`` is accepted for ``database``."""
    raw = (location if location is not None else env_str(ENV_MODEL_STORE, "")).strip()
    if not raw:
        from crypto_ml.settings.paths import artifacts_dir

        return artifacts_dir("models").as_uri()
    if raw.lower() in (DATABASE, "db"):
        return DATABASE
    if "://" not in raw:  # a plain folder
        return Path(raw).expanduser().resolve().as_uri()
    return raw


def _files_of(forecaster: BaseForecaster) -> dict[str, bytes]:
    """The forecaster's saved files (``forecaster.json``, ``model.keras``...) as bytes."""
    with tempfile.TemporaryDirectory(prefix="crypto-ml-save-") as tmp:
        folder = forecaster.save(Path(tmp) / "m")
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class ModelStore:
    """Save and load fitted forecasters per (coin, model), versioned by training window.

    :param root: a local artifact folder (shorthand for ``location=<folder>``; tests, one host).
    :param url: the project database URL (default :func:`crypto_ml.storage.database_url`).
    :param location: ``"database"`` or an fsspec URL (default: :func:`model_store_location`).
    :param cache_dir: where fetched artifacts are unpacked for loading (default
        ``$CRYPTO_ML_HOME/model-cache``); private to this host, never shared.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        url: str | None = None,
        *,
        location: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if root is not None and location is not None:
            raise ValueError("give ModelStore either root (a local folder) or location, not both")
        self.root = root
        self.url = url
        self._location = location if root is None else str(root)
        self.cache_dir = cache_dir
        self._migrated = False

    # -- where --------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """``"database"`` or the fsspec URL of the artifact base (resolved on each use)."""
        return model_store_location(self._location)

    @property
    def root_path(self) -> Path:
        """The local folder of a ``file://`` store (tests, one machine)."""
        location = self.location
        if not location.startswith("file://"):
            raise ValueError(f"the model store is {location}, not a local folder")
        import fsspec.core

        path = Path(fsspec.core.url_to_fs(location)[1])
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _fs(self):
        import fsspec.core

        try:
            return fsspec.core.url_to_fs(self.location)
        except (ImportError, ValueError) as exc:
            raise ValueError(
                f"{ENV_MODEL_STORE}={self.location!r} cannot be used: {exc}. Valid: 'database', "
                "file:///folder, or an fsspec URL whose package is installed (s3:// needs s3fs)"
            ) from None

    def _cache_root(self) -> Path:
        if self.cache_dir is not None:
            path = Path(self.cache_dir)
            path.mkdir(parents=True, exist_ok=True)
            return path
        from crypto_ml.settings.paths import artifacts_dir

        return artifacts_dir("model-cache")

    def _db(self):
        """:mod:`crypto_ml.storage.model_versions`, on a migrated database."""
        from crypto_ml.storage import migrate, model_versions

        if not self._migrated:
            migrate(self.url)
            self._migrated = True
        return model_versions

    # -- writing ------------------------------------------------------------------------------
    def _write_database(self, coin: str, model: str, fp: str, files: dict[str, bytes]) -> str:
        self._db().store_artifact_files(
            coin, model, fp, {name: (data, _sha256(data)) for name, data in files.items()}, url=self.url
        )  # one transaction: all files or none
        return f"{DATABASE}:{coin}/{model}/{fp}"

    def _write_fsspec(self, coin: str, model: str, fp: str, files: dict[str, bytes]) -> str:
        fs, base = self._fs()
        folder = f"{base.rstrip('/')}/{coin}/{model}/{fp}"
        manifest_path = f"{folder}/{MANIFEST}"
        if fs.exists(manifest_path):  # this training is already stored, completely
            return f"{self.location.rstrip('/')}/{coin}/{model}/{fp}"
        fs.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            fs.pipe_file(f"{folder}/{name}", data)
        manifest = json.dumps(
            {"files": {n: {"sha256": _sha256(d), "size": len(d)} for n, d in files.items()}},
            sort_keys=True,
            indent=1,
        ).encode()
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if "file" in protocols or "local" in protocols:
            tmp = f"{folder}/.{MANIFEST}.{uuid.uuid4().hex}"
            fs.pipe_file(tmp, manifest)
            fs.mv(tmp, manifest_path)  # rename: atomic on one filesystem
        else:
            fs.pipe_file(manifest_path, manifest)  # one PUT: atomic on object stores
        return f"{self.location.rstrip('/')}/{coin}/{model}/{fp}"

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
        files = _files_of(forecaster)
        if self.location == DATABASE:
            artifact = self._write_database(coin, model, fp, files)
        else:
            artifact = self._write_fsspec(coin, model, fp, files)
        # Only now, with the files complete, does a version point at them.
        version = storage.record_model_version(
            coin=coin,
            model=model,
            train_start=as_date(train_start),
            train_end=as_date(train_end),
            n_obs=n_obs,
            params=params,
            metrics=_jsonable(metrics or {}),
            artifact_path=artifact,
            fingerprint=fp,
            url=self.url,
        )
        return int(version)

    # -- reading ------------------------------------------------------------------------------
    def info(self, coin: str, model: str, as_of: Any = None) -> dict | None:
        """Metadata of the newest version trained on data up to ``as_of`` (``None``: any)."""
        day = None if as_of is None else as_date(as_of)
        return self._db().latest_model_version(coin, model, as_of=day, url=self.url)

    def info_version(self, coin: str, model: str, version: int) -> dict | None:
        """Metadata of version ``version`` of (coin, model), or ``None`` when it was never recorded."""
        return self._db().get_model_version(coin, model, version, url=self.url)

    def _fetch_database(self, row: dict) -> dict[str, tuple[bytes, str]]:
        return self._db().load_artifact_files(row["coin"], row["model"], row["fingerprint"], url=self.url)

    def _fetch_fsspec(self, artifact: str) -> dict[str, tuple[bytes, str]]:
        import fsspec.core

        fs, folder = fsspec.core.url_to_fs(artifact)
        try:
            manifest = json.loads(fs.cat_file(f"{folder}/{MANIFEST}"))
        except FileNotFoundError:
            return {}
        out = {}
        for name, meta in manifest["files"].items():
            try:
                out[name] = (fs.cat_file(f"{folder}/{name}"), meta["sha256"])
            except FileNotFoundError:
                out[name] = (b"", meta["sha256"])  # fails the checksum below, with its name
        return out

    def local_copy(self, row: dict) -> Path:
        """A complete local folder of the artifact of model-version ``row``, fetched once per
        host into the cache; :class:`ArtifactError` when it is missing or corrupt."""
        coin, model, version = row["coin"], row["model"], row["version"]
        artifact = row.get("artifact_path") or ""
        what = f"{model!r} model v{version} for {coin!r}"
        target = self._cache_root() / coin / model / row["fingerprint"]
        if (target / "forecaster.json").exists():
            return target
        if artifact.startswith(f"{DATABASE}:"):
            files = self._fetch_database(row)
        elif "://" in artifact:
            files = self._fetch_fsspec(artifact)
        elif artifact and Path(artifact).is_dir():  # written by an older version of this store
            return Path(artifact)
        else:
            files = {}
        if not files:
            raise ArtifactError(f"{what} is recorded but its files are missing ({artifact or 'no location'})")
        for name, (data, sha) in files.items():
            if _sha256(data) != sha:
                raise ArtifactError(
                    f"{what}: {name} in {artifact} does not match its checksum (incomplete or corrupt)"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{row['fingerprint']}-", dir=target.parent))
        try:
            for name, (data, _) in files.items():
                (staging / name).write_bytes(data)
            try:
                staging.rename(target)  # complete, or not there at all
            except OSError:  # another process of this host got there first
                if not (target / "forecaster.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def load_row(self, row: dict) -> BaseForecaster:
        """The forecaster of model-version ``row`` (a :meth:`info` result)."""
        return load_forecaster(self.local_copy(row))

    def load_with_info(self, coin: str, model: str, as_of: Any = None) -> tuple[BaseForecaster, dict]:
        """``(forecaster, metadata)`` of the newest version trained on data up to ``as_of``."""
        row = self.info(coin, model, as_of)
        if row is None:
            when = f" trained on data up to {as_date(as_of)}" if as_of is not None else ""
            raise LookupError(
                f"no stored {model!r} model for {coin!r}{when} in {self.url or 'the default database'}"
            )
        return self.load_row(row), row

    def load(self, coin: str, model: str, as_of: Any = None) -> BaseForecaster:
        """The newest version trained on data up to ``as_of``; :class:`LookupError` if none."""
        return self.load_with_info(coin, model, as_of)[0]

    # -- promotion ----------------------------------------------------------------------------
    def record_evaluation(
        self, coin: str, model: str, version: int, *, evaluation: dict, status: str, reason: str, actor: str
    ) -> dict:
        """Keep the evaluation made at training and its verdict with the version, once."""
        return self._db().record_evaluation(
            coin,
            model,
            version,
            evaluation=_jsonable(evaluation),
            status=status,
            reason=reason,
            actor=actor,
            url=self.url,
        )

    def set_promotion(
        self, coin: str, model: str, version: int, status: str, *, reason: str, actor: str
    ) -> dict:
        """Promote (``"promoted"``) or demote (``"demoted"``) a version by hand, audited."""
        return self._db().set_promotion(
            coin, model, version, status, reason=reason, actor=actor, url=self.url
        )

    def champion(self, coin: str) -> dict | None:
        """The coin's promoted version, or None (naive / no-trade is the champion)."""
        return self._db().champion(coin, url=self.url)

    def versions(self, coin: str | None = None, model: str | None = None) -> list[dict]:
        """Every recorded version's metadata, evaluation and promotion status."""
        return self._db().list_model_versions(coin=coin, model=model, url=self.url)

    def promotion_history(self, coin: str | None = None, model: str | None = None) -> list[dict]:
        """The audit trail of promotion changes, oldest first."""
        return self._db().promotion_history(coin=coin, model=model, url=self.url)

    def __repr__(self) -> str:
        return f"ModelStore(location={self._location or 'default'!r}, url={self.url!r})"

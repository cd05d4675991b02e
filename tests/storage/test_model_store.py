"""ModelStore on a real SQLite database and real files: versions, as_of, idempotence, no pickle."""

from __future__ import annotations

import numpy as np
import pytest

from crypto_ml.evaluation import backtest_series
from crypto_ml.forecasting import LinearTrendForecaster, LSTMForecaster, NaiveForecaster
from crypto_ml.storage.model_store import ModelStore, fingerprint


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    return ModelStore(url=f"sqlite:///{tmp_path / 't.db'}")


def test_save_load_and_as_of_semantics(store, tmp_path):
    y = 1.0 + np.arange(100.0)
    v1 = store.save(
        "bitcoin",
        "linear",
        LinearTrendForecaster().fit(y[:60]),
        train_start="2017-01-01",
        train_end="2017-03-01",
        metrics={"mae": 1.5},
    )
    v2 = store.save(
        "bitcoin",
        "linear",
        LinearTrendForecaster(window=5).fit(y[:90]),
        train_start="2017-01-01",
        train_end="2017-03-31",
    )
    assert (v1, v2) == (1, 2)
    # default location is file://$CRYPTO_ML_HOME/models; one folder per training (fingerprint)
    folder = tmp_path / "home" / "models" / "bitcoin" / "linear"
    assert len(list(folder.iterdir())) == 2
    assert sorted(p.name for p in next(folder.iterdir()).iterdir()) == ["MANIFEST.json", "forecaster.json"]

    newest = store.load("bitcoin", "linear")
    assert newest.get_params() == LinearTrendForecaster(window=5).get_params() and newest.n_obs_ == 90
    older, info = store.load_with_info("bitcoin", "linear", as_of="2017-03-15")
    assert info["version"] == 1 and info["metrics"] == {"mae": 1.5} and info["n_obs"] == 60
    np.testing.assert_allclose(older.predict(3), [61.0, 62.0, 63.0])
    assert store.load("bitcoin", "linear", as_of="2017-03-31").n_obs_ == 90  # inclusive
    with pytest.raises(
        LookupError, match="no stored 'linear' model for 'bitcoin' trained on data up to 2017-02-28"
    ):
        store.load("bitcoin", "linear", as_of="2017-02-28")
    with pytest.raises(LookupError, match="no stored 'naive' model for 'ethereum'"):
        store.load("ethereum", "naive")


def test_saving_the_same_training_twice_is_idempotent(store):
    f = NaiveForecaster().fit([1.0, 2.0, 3.0])
    kw = dict(train_start="2017-01-01", train_end="2017-01-03")
    assert store.save("eth", "naive", f, **kw) == store.save("eth", "naive", f, **kw) == 1
    assert (
        store.save(
            "eth",
            "naive",
            NaiveForecaster().fit([1.0, 2.0, 3.0, 4.0]),
            train_start="2017-01-01",
            train_end="2017-01-04",
        )
        == 2
    )
    folder = store.root_path / "eth" / "naive"
    assert len(list(folder.iterdir())) == 2  # one folder per training, nothing else left behind


def test_fingerprint_changes_with_params_and_window():
    base = fingerprint("lstm", {"epochs": 1}, "2017-01-01", "2017-02-01", 32)
    assert base == fingerprint("lstm", {"epochs": 1}, "2017-01-01", "2017-02-01", 32)
    assert base != fingerprint("lstm", {"epochs": 2}, "2017-01-01", "2017-02-01", 32)
    assert base != fingerprint("lstm", {"epochs": 1}, "2017-01-01", "2017-02-02", 32)


def test_unfitted_and_missing_files_are_clear_errors(store):
    with pytest.raises(ValueError, match="unfitted"):
        store.save("x", "naive", NaiveForecaster(), train_start="2017-01-01", train_end="2017-01-02")
    store.save("x", "naive", NaiveForecaster().fit([1.0]), train_start="2017-01-01", train_end="2017-01-01")
    import shutil

    shutil.rmtree(store.root_path / "x" / "naive")
    with pytest.raises(LookupError, match="files are missing"):
        store.load("x", "naive")


def test_lstm_round_trip_through_the_store_without_pickle(store):
    y = 20.0 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.05, 60)))
    f = LSTMForecaster(window=4, units=(2, 2), epochs=1, batch_size=16, min_train=5).fit(y)
    store.save("doge", "lstm", f, train_start="2017-01-01", train_end="2017-03-01")
    (folder,) = (store.root_path / "doge" / "lstm").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.json", "forecaster.json", "model.keras"]
    assert not list(store.root_path.rglob("*.pkl")) and not list(store.root_path.rglob("*.joblib"))
    np.testing.assert_array_equal(store.load("doge", "lstm", as_of="2017-03-01").predict(5), f.predict(5))


def test_backtest_saves_each_fold_to_the_store(store):
    dates = np.arange("2017-01-01", "2017-04-11", dtype="datetime64[D]")  # 100 days
    res = backtest_series(
        "linear", 1.0 + np.arange(100.0), dates, coin="line", period=20, folds=2, horizon=3, store=store
    )
    assert len(res.folds) == 2
    first, info = store.load_with_info("line", "linear", as_of="2017-03-21")
    assert info["version"] == 1 and str(info["train_end"]) == "2017-03-21" and first.n_obs_ == 80
    assert info["metrics"]["mae"] == pytest.approx(0.0, abs=1e-9)
    assert store.load_with_info("line", "linear")[1]["version"] == 2


@pytest.fixture(params=["database", "memory"])
def shared(request, db_url, tmp_path):
    """A store on the project database, or on fsspec object storage (``memory://``)."""
    from crypto_ml.storage import migrate

    migrate(db_url)
    location = "database" if request.param == "database" else f"memory://cml-{tmp_path.name}"
    return lambda host: ModelStore(url=db_url, location=location, cache_dir=tmp_path / host)


def test_shared_store_serves_every_host_and_never_half_an_artifact(shared, tmp_path):
    y = 1.0 + np.arange(100.0)
    writer, reader = shared("host-a"), shared("host-b")
    fitted = LinearTrendForecaster().fit(y[:60])
    assert writer.save("bitcoin", "linear", fitted, train_start="2017-01-01", train_end="2017-03-01") == 1
    assert writer.save("bitcoin", "linear", fitted, train_start="2017-01-01", train_end="2017-03-01") == 1
    np.testing.assert_allclose(reader.load("bitcoin", "linear").predict(3), fitted.predict(3))
    assert (tmp_path / "host-b" / "bitcoin" / "linear").is_dir() and not (tmp_path / "host-a").exists()

    # A corrupt artifact (a torn write) is refused by its checksum, never loaded.
    later = LinearTrendForecaster(window=5).fit(y[:90])
    writer.save("bitcoin", "linear", later, train_start="2017-01-01", train_end="2017-03-31")
    row = reader.info("bitcoin", "linear")
    _corrupt(writer, row)
    with pytest.raises(LookupError, match="does not match its checksum"):
        shared("host-c").load("bitcoin", "linear")
    assert not (tmp_path / "host-c" / "bitcoin" / "linear" / row["fingerprint"]).exists()


def _corrupt(store, row):
    if store.location == "database":
        from sqlalchemy import update

        from crypto_ml.storage import ModelArtifact, session_scope

        with session_scope(store.url) as session:
            session.execute(
                update(ModelArtifact)
                .where(ModelArtifact.fingerprint == row["fingerprint"])
                .values(content=b'{"model": "linear", "trunc')
            )
    else:
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(row["artifact_path"])
        fs.pipe_file(f"{path}/forecaster.json", b'{"model": "linear", "trunc')


def test_a_version_is_recorded_only_after_its_files_are_complete(tmp_path, monkeypatch):
    """The writer dies between the files and the manifest: no version points at them, readers
    keep serving the previous one."""
    store = ModelStore(
        url=f"sqlite:///{tmp_path / 'm.db'}",
        location=(tmp_path / "bucket").as_uri(),
        cache_dir=tmp_path / "cache",
    )
    y = 1.0 + np.arange(100.0)
    store.save(
        "eth", "linear", LinearTrendForecaster().fit(y[:60]), train_start="2017-01-01", train_end="2017-03-01"
    )
    import fsspec.implementations.local as local

    real = local.LocalFileSystem.mv

    def crash(self, path1, path2, **kw):
        if path2.endswith("MANIFEST.json"):
            raise OSError("host lost mid-write")
        return real(self, path1, path2, **kw)

    monkeypatch.setattr(local.LocalFileSystem, "mv", crash)
    with pytest.raises(OSError, match="host lost"):
        store.save(
            "eth",
            "linear",
            LinearTrendForecaster().fit(y[:90]),
            train_start="2017-01-01",
            train_end="2017-03-31",
        )
    assert store.info("eth", "linear")["version"] == 1
    assert store.load("eth", "linear").n_obs_ == 60


def test_model_store_url_is_one_setting(monkeypatch, tmp_path):
    from crypto_ml.storage.model_store import model_store_location

    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CRYPTO_ML_MODEL_STORE_URL", raising=False)
    assert model_store_location() == (tmp_path / "home" / "models").as_uri()  # the embedded default
    for value, expected in (
        ("database", "database"),
        ("DB", "database"),
        ("s3://bucket/models", "s3://bucket/models"),
    ):
        monkeypatch.setenv("CRYPTO_ML_MODEL_STORE_URL", value)
        assert model_store_location() == expected
    monkeypatch.setenv("CRYPTO_ML_MODEL_STORE_URL", "nosuchproto://x")
    with pytest.raises(ValueError, match="CRYPTO_ML_MODEL_STORE_URL='nosuchproto://x' cannot be used"):
        ModelStore(url=f"sqlite:///{tmp_path / 'm.db'}").save(
            "x", "naive", NaiveForecaster().fit([1.0]), train_start="2017-01-01", train_end="2017-01-01"
        )

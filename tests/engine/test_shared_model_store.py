"""Two engine workers standing in for two hosts: each has its own CRYPTO_ML_HOME (no shared
folder). A model version trained through one is served by the other, from the shared model store
chosen by one URL (CRYPTO_ML_MODEL_STORE_URL): the project database, or object storage (fsspec;
here ``file://`` on a folder neither home contains)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

AS_OF = "2017-06-30"


@pytest.fixture(
    params=[
        "database-sqlite",
        pytest.param("database-postgres", marks=pytest.mark.postgres),
        "object-storage",
    ]
)
def shared_store(request, tmp_path, engine_env):
    """(model store URL, project database URL) for both workers."""
    from crypto_ml.storage import migrate

    if request.param == "database-postgres":
        db = request.getfixturevalue("pg_url")
        migrate(db)
        return "database", db
    db = engine_env["CRYPTO_ML_DATABASE_URL"]
    if request.param == "database-sqlite":
        return "database", db
    return (tmp_path / "bucket").as_uri(), db


def test_a_version_trained_on_one_host_is_served_by_another(
    embedded_broker, start_worker, tmp_path, shared_store
):
    from crypto_ml.engine.client import submit_predict, submit_train, wait
    from crypto_ml.storage.model_store import ModelStore

    location, db = shared_store
    homes = {name: tmp_path / f"host-{name}" for name in ("a", "b")}
    common = {"CRYPTO_ML_MODEL_STORE_URL": location, "CRYPTO_ML_DATABASE_URL": db}
    trainer = start_worker(
        embedded_broker, queues="train", concurrency=1, env={**common, "CRYPTO_ML_HOME": str(homes["a"])}
    )
    server = start_worker(
        embedded_broker, queues="predict", concurrency=1, env={**common, "CRYPTO_ML_HOME": str(homes["b"])}
    )

    trained = wait(
        submit_train(coin="bitcoin", as_of=AS_OF, model="linear", app=trainer.app),
        timeout=120,
        app=trainer.app,
    )
    assert trained["saved"] and trained["version"] == 1 and trained["hostname"] == trainer.node
    served = wait(
        submit_predict(coin="bitcoin", as_of=AS_OF, model="linear", horizon=5, app=server.app),
        timeout=120,
        app=server.app,
    )
    assert served["hostname"] == server.node and served["version"] == trained["version"]
    assert not served["cached"]  # not warm there: loaded from the shared store

    # Nothing went through a shared folder: host a wrote no model files into its home, host b
    # unpacked the version into its own private cache.
    assert not list(homes["a"].rglob("forecaster.json"))
    assert [p.parent.parent.name for p in homes["b"].rglob("forecaster.json")] == ["linear"]
    # The served forecast is the stored version's, moved to the closes up to as_of.
    store = ModelStore(url=db, location=location, cache_dir=tmp_path / "reader-cache")
    forecaster, info = store.load_with_info("bitcoin", "linear", as_of=AS_OF)
    assert info["version"] == 1
    assert served["values"] == pytest.approx([float(v) for v in forecaster.predict(5)])

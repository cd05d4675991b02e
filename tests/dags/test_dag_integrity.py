"""Every DAG file imports cleanly, is thin, and follows the project's rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"crypto_ml_master", "crypto_ml_coin"} <= set(dagbag.dags)


def test_every_dag_has_tags_docs_a_description_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "crypto-ml" in dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag.description, f"{dag_id}: no description (the DAG list shows it)"
        for t in dag.tasks:
            if t.task_id == "check_all_coins":
                # the watcher that fails the run when anything upstream failed: retrying cannot help
                assert t.trigger_rule == "all_done", "it runs (green) on a good day too"
                assert t.retries == 0, f"{dag_id}.{t.task_id} has retries={t.retries}"
            else:
                assert t.retries >= 2, f"{dag_id}.{t.task_id} has retries={t.retries}"


HEAVY = (
    "tensorflow",
    "keras",
    "sklearn",
    "pandas",
    "ccxt",
    "crypto_ml.storage",
    "crypto_ml.data.loader",
    "crypto_ml.sources",
)


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_import_nothing_heavy(path, tmp_path):
    """The scheduler parses DAG files every few seconds: no TensorFlow, pandas, our DB layer..."""
    code = (
        "import sys, runpy; before = set(sys.modules); runpy.run_path(sys.argv[1]); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules and m not in before))"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "", f"{path.name} imports at parse time: {out.stdout.strip()}"


def test_airflow_lists_crypto_ml_as_a_provider(tmp_path):
    """The ``apache_airflow_provider`` entry point makes ``airflow providers list`` show us."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "providers", "get", "crypto-ml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "crypto-ml" in out.stdout and "0.1.0" in out.stdout


def test_airflow_reads_the_repos_airflow_cfg(tmp_path):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    get = [str(Path(sys.executable).parent / "airflow"), "config", "get-value"]
    out = subprocess.run([*get, "core", "dags_folder"], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == str(DAGS)
    out = subprocess.run([*get, "core", "load_examples"], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"

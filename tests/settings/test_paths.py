"""Where the local stacks find the project, with or without ``source scripts/env.sh``."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto_ml.settings.paths import project_env, project_root

ROOT = Path(__file__).resolve().parents[2]


def test_project_root_defaults_to_the_checkout_above_the_package(monkeypatch):
    monkeypatch.delenv("CRYPTO_ML_ROOT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    assert project_root() == ROOT
    # A stack started from a shell that never sourced env.sh still runs this repo's DAGs with
    # this repo's airflow.cfg (whose dags_folder is ${CRYPTO_ML_ROOT}/dags).
    assert project_env() == {"CRYPTO_ML_ROOT": str(ROOT), "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg")}


def test_an_explicit_airflow_config_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONFIG", str(tmp_path / "mine.cfg"))
    assert project_env()["AIRFLOW_CONFIG"] == str(tmp_path / "mine.cfg")


def test_a_wrong_root_names_what_is_missing(monkeypatch, tmp_path):
    (tmp_path / "dags").mkdir()
    monkeypatch.setenv("CRYPTO_ML_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"CRYPTO_ML_ROOT .* no plugins, airflow\.cfg there"):
        project_root()


def test_without_airflow_home_the_checkouts_home_is_used_never_the_users(monkeypatch):
    from crypto_ml.settings.paths import airflow_home

    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.delenv("CRYPTO_ML_ROOT", raising=False)
    assert airflow_home() == ROOT / ".airflow"


def test_outside_a_checkout_without_airflow_home_the_commands_refuse_naming_the_variable(
    monkeypatch, tmp_path
):
    from crypto_ml.settings.paths import airflow_home

    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    monkeypatch.setenv("CRYPTO_ML_ROOT", str(tmp_path))  # not a checkout
    with pytest.raises(
        FileNotFoundError,
        match=r"AIRFLOW_HOME is not set, and crypto_ml does not run from a "
        r"Crypto-ML checkout: set AIRFLOW_HOME",
    ):
        airflow_home()

"""The provider metadata lists what the package contains: every operator, sensor, trigger and hook
module, each Connection type's hook and fields, read the way Airflow reads them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import crypto_ml
from crypto_ml.provider_info import PACKAGES, get_provider_info


def _bases():
    from airflow.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    # A sensor is an operator; DagRunsSensor defers from a plain BaseOperator, as Airflow's own
    # deferrable-only sensors do.
    return {"hooks": BaseHook, "operators": BaseOperator, "sensors": BaseOperator, "triggers": BaseTrigger}


def _classes(module, base):
    return {
        name
        for name, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, base) and obj.__module__ == module.__name__ and not name.startswith("_")
    }


@pytest.fixture(scope="module")
def info():
    return get_provider_info()


@pytest.mark.parametrize("kind", sorted(PACKAGES))
def test_every_listed_module_holds_a_public_class_of_its_kind(info, kind):
    base = _bases()[kind]
    (entry,) = info[kind]
    assert entry["python-modules"], kind
    for name in entry["python-modules"]:
        assert _classes(importlib.import_module(name), base), f"{name} ({kind}) defines no {base.__name__}"


def test_no_operator_sensor_trigger_or_hook_lives_outside_the_listed_modules(info):
    listed = {m for kind in PACKAGES for m in info[kind][0]["python-modules"]}
    kinds = _bases()
    strays = []
    for mod in pkgutil.walk_packages(crypto_ml.__path__, "crypto_ml."):
        if mod.name in listed or ".testing" in mod.name or "migrations" in mod.name or mod.ispkg:
            continue
        module = importlib.import_module(mod.name)
        strays += [f"{mod.name}.{c}" for base in set(kinds.values()) for c in _classes(module, base)]
    assert not strays, f"provider classes outside {sorted(PACKAGES.values())}: {strays}"


def test_the_fan_out_operator_and_the_dag_runs_sensor_and_trigger_are_listed(info):
    assert "crypto_ml.operators.fanout" in info["operators"][0]["python-modules"]
    assert "crypto_ml.sensors.dag_runs" in info["sensors"][0]["python-modules"]
    assert "crypto_ml.triggers.dag_runs" in info["triggers"][0]["python-modules"]


def test_each_connection_type_names_a_hook_of_that_type(info):
    for conn in info["connection-types"]:
        module, _, cls = conn["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), cls)
        assert hook.conn_type == conn["connection-type"], conn["hook-class-name"]
        assert module in info["hooks"][0]["python-modules"]


def test_airflow_reads_the_provider_through_its_entry_point(info):
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("crypto_ml.")]
    assert ep.load()() == info

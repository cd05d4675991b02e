"""crypto_ml.stack.probe: the containers' cheap health checks, against a real metadata table and broker."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from crypto_ml.stack import probe


@pytest.fixture
def metadata_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'airflow.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE job (id INTEGER PRIMARY KEY, job_type TEXT, hostname TEXT, "
                "state TEXT, latest_heartbeat TIMESTAMP)"
            )
        )
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url)
    monkeypatch.setenv("CRYPTO_ML_HOSTNAME", "worker-a")

    def beat(job_type: str, age_s: float, state: str = "running", host: str = "worker-a") -> None:
        at = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=age_s)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO job (job_type, hostname, state, latest_heartbeat) VALUES (:t, :h, :s, :b)"),
                {"t": job_type, "h": host, "s": state, "b": at},
            )

    return beat


def test_airflow_job_healthy_when_this_host_beat_recently(metadata_db):
    metadata_db("TriggererJob", 3)
    assert "heartbeat 3 s ago" in probe.airflow_job("TriggererJob", max_age=60)
    assert probe.main(["airflow-job", "TriggererJob"]) == 0


def test_airflow_job_unhealthy_cases_say_why(metadata_db, capsys):
    metadata_db("TriggererJob", 300)
    metadata_db("DagProcessorJob", 1, host="other-host")
    metadata_db("SchedulerJob", 1, state="failed")
    with pytest.raises(probe.ProbeFailed, match="last heartbeat 300 s ago"):
        probe.airflow_job("TriggererJob", max_age=60)
    with pytest.raises(probe.ProbeFailed, match="no running DagProcessorJob on host 'worker-a'"):
        probe.airflow_job("DagProcessorJob", max_age=60)
    assert probe.main(["airflow-job", "SchedulerJob"]) == 1
    assert capsys.readouterr().err.startswith("unhealthy: no running SchedulerJob")


def test_airflow_job_without_a_database_setting(monkeypatch):
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    with pytest.raises(probe.ProbeFailed, match="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is not set"):
        probe.airflow_job("SchedulerJob", max_age=60)


def test_celery_worker_that_does_not_answer(monkeypatch):
    """No worker named celery@nobody listens on this broker: unhealthy within the timeout. The
    keys the ping created are removed again."""
    import os

    import redis

    url = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        before = set(client.keys("*"))
    except redis.ConnectionError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis not reachable at {url}: {exc}")
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    monkeypatch.setenv("AIRFLOW__CELERY__BROKER_URL", url)
    try:
        with pytest.raises(probe.ProbeFailed, match="celery@nobody did not answer a ping within 1 s"):
            probe.celery_worker("airflow", timeout=1, hostname="nobody")
    finally:
        for key in set(client.keys("*")) - before:
            client.delete(key)

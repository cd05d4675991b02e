"""A Celery app with one no-op task, configured as the engine is (JSON only, late acks, prefetch 1,
results in the backend), for :mod:`bench_broker`: what the broker and the result backend cost per
heavy-sized message when the work itself costs nothing."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("bench_broker", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_BROKER_URL"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ["BENCH_QUEUE"],
    broker_transport_options={"global_keyprefix": os.environ["BENCH_PREFIX"]},
    result_backend_transport_options={"global_keyprefix": os.environ["BENCH_PREFIX"]},
    result_expires=600,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(payload: dict) -> dict:
    """The size of what arrived, as a small result (a heavy unit's answer is a few kB)."""
    return {"n": len(payload.get("closes", ())), "pad": "x" * 2000}

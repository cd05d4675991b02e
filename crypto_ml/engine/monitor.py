"""The engine's queues and who consumes them, for ``crypto-ml engine stats`` (Flower shows the same on
the stack; the embedded default has no Flower).

:func:`queue_overview` gives, per queue of the engine (``predict``, ``train``, ``heavy``), the
messages waiting in it (the broker's count, read through kombu: a ``queue_declare`` of the app's
own queue definition, which every worker makes too) and the workers consuming it:

- where the broker has broadcast (Redis, RabbitMQ): every worker's answer to Celery's
  ``inspect active_queues``;
- on the embedded default (kombu's SQLAlchemy transport, no fanout, so no ``inspect``): a
  ``crypto_ml.stats`` task sent to each queue, answered by a worker that consumes it; that finds
  one consumer per queue, not all, and a queue with messages ahead answers only when they are
  done (reported as no answer within the timeout, with the count ahead). The counts are read
  before those tasks are sent; an unanswered one stays in its queue (counted the next time) until
  a worker takes it and drops it as expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crypto_ml.settings.engine import HEAVY_QUEUE, PREDICT_QUEUE, TRAIN_QUEUE

if TYPE_CHECKING:
    from celery import Celery

#: The engine's queues, in the order shown.
QUEUES = (PREDICT_QUEUE, TRAIN_QUEUE, HEAVY_QUEUE)


def queue_lengths(app: Celery, queues: Sequence[str] = QUEUES) -> dict[str, int]:
    """Messages waiting in each queue (ready, not yet delivered to a worker), from the broker."""
    lengths = {}
    with app.connection_for_read() as conn, conn.channel() as channel:
        for name in queues:
            declared = app.amqp.queues[name].bind(channel).queue_declare()
            lengths[name] = int(declared.message_count)
    return lengths


def has_broadcast(app: Celery) -> bool:
    """Whether the broker's transport has fanout exchanges (Celery's remote control needs them)."""
    with app.connection_for_read() as conn:
        return "fanout" in conn.transport.implements.exchange_type


def consumers_by_inspect(app: Celery, timeout: float, queues: Sequence[str] = QUEUES) -> dict[str, list[str]]:
    """Per queue, the workers that answered ``inspect active_queues`` consuming it."""
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    found: dict[str, list[str]] = {name: [] for name in queues}
    for node, consumed in sorted(replies.items()):
        for queue in consumed:
            if queue.get("name") in found:
                found[queue["name"]].append(node)
    return found


def consumers_by_task(app: Celery, timeout: float, queues: Sequence[str] = QUEUES) -> dict[str, list[str]]:
    """Per queue, the worker that answered a ``crypto_ml.stats`` task sent to it within ``timeout``
    (an empty list when none did)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from crypto_ml.engine.protocol import STATS_TASK

    # expires: a worker that takes the task later (none consumed the queue in time) drops it
    sent = {name: app.send_task(STATS_TASK, queue=name, routing_key=name, expires=timeout) for name in queues}
    found: dict[str, list[str]] = {}
    for name, result in sent.items():
        try:
            found[name] = [result.get(timeout=timeout)["hostname"]]
        except CeleryTimeout:
            found[name] = []
    return found


def queue_overview(app: Celery, *, timeout: float = 5.0, queues: Sequence[str] = QUEUES) -> dict[str, Any]:
    """``{"broadcast": bool, "how": ..., "queues": [{"name", "messages", "workers"}]}``: each queue's
    length and the workers consuming it (see the module docstring for how they are found)."""
    lengths = queue_lengths(app, queues)
    broadcast = has_broadcast(app)
    if broadcast:
        consumers = consumers_by_inspect(app, timeout, queues)
        how = "inspect active_queues: every worker that answered"
    else:
        consumers = consumers_by_task(app, timeout, queues)
        how = (
            "the broker has no broadcast (embedded): a crypto_ml.stats task per queue, "
            "answered by one worker that consumes it"
        )
    rows = []
    for name in queues:
        row: dict[str, Any] = {"name": name, "messages": lengths[name], "workers": consumers[name]}
        if not consumers[name]:
            row["note"] = f"no worker answered within {timeout:g} s" + (
                f" ({lengths[name]} messages ahead)" if lengths[name] and not broadcast else ""
            )
        rows.append(row)
    return {"broadcast": broadcast, "how": how, "queues": rows}


def format_overview(overview: dict[str, Any]) -> str:
    """The overview as a small table, one line per queue."""
    lines = [f"{'queue':<8} {'messages':>8}  workers", f"{'-' * 8} {'-' * 8}  {'-' * 7}"]
    for row in overview["queues"]:
        workers = ", ".join(row["workers"]) or f"none: {row['note']}"
        lines.append(f"{row['name']:<8} {row['messages']:>8}  {workers}")
    lines.append(f"(workers found by {overview['how']})")
    return "\n".join(lines)

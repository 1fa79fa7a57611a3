"""Where the alerts of a flagged night stopped: the stage queues and their dead letters.

Each stage's message carries the batch's receipt time (``times['received']``; the
ingest message carries it as its third argument), so a gap found by
:func:`~boom_tasks.conductor.tally.gaps` is looked up in the queue of the stage
that owes it: waiting (ready, in flight or delayed), dead (with the failure the
result backend recorded), or gone from every queue (lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import redis
from dramatiq import Message

from boom_tasks.broker import NAMESPACE
from boom_tasks.conductor.counters import batch_candids, receipt_key
from boom_tasks.conductor.tally import QUEUE_OF, Gap
from boom_tasks.monitor.queues import dead_letters

#: Hashes of a Dramatiq queue holding messages, and what a message there means.
_STATES = ((".msgs", "waiting"), (".DQ.msgs", "waiting (retry delayed)"), (".XQ.msgs", "dead"))
#: Dead letters read per queue to find their failures.
DEAD_LETTERS_READ = 1000


@dataclass
class Found:
    """A message of a stage queue, by the receipt of its batch."""

    queue: str
    state: str
    candids: list[int] | None
    error: str | None = None


@dataclass
class Stop:
    """Alerts of one batch that stopped at a stage, as the report lists them."""

    stage: str
    queue: str
    state: str
    count: int
    candids: list[int] = field(default_factory=list)
    receipt: str = ""
    error: str | None = None


def _receipt(message: Message) -> tuple[str | None, list[int] | None]:
    args = message.args
    if args and isinstance(args[0], str):  # ingest: (batch key, count, received_at)
        return (receipt_key(float(args[2])) if len(args) > 2 else None), None
    times = cast(dict[str, Any], args[1]) if len(args) > 1 else {}
    received = times.get("received")
    return (None if received is None else receipt_key(float(received))), list(args[0])


def queued_by_receipt(valkey: redis.Redis, prefix: str) -> dict[tuple[str, str], Found]:
    """Index every message of a survey's stage queues by (queue suffix, receipt key)."""
    index: dict[tuple[str, str], Found] = {}
    for queue in {q for queues in QUEUE_OF.values() for q in queues}:
        name = f"{prefix}_{queue}"
        errors = {d.redis_id: d.error for d in dead_letters(valkey, name, DEAD_LETTERS_READ)}
        for suffix, state in _STATES:
            raw = cast(dict[bytes, bytes], valkey.hgetall(f"{NAMESPACE}:{name}{suffix}"))
            for redis_id, data in raw.items():
                receipt, candids = _receipt(Message.decode(data))
                if receipt is not None:
                    error = errors.get(redis_id.decode()) if state == "dead" else None
                    index[(queue, receipt)] = Found(name, state, candids, error)
    return index


def locate(
    valkey: redis.Redis,
    survey: str,
    prefix: str,
    night: str,
    found_gaps: Iterable[Gap],
    index: dict[tuple[str, str], Found],
    limit: int,
) -> list[Stop]:
    """Say where each gap's alerts are, naming up to ``limit`` candids per gap.

    A batch's candids come from its message when a queue still holds it, else from
    the candids ingest recorded for the batch (a batch lost before ingest is named
    by its receipt only: its packets were never parsed). ``index`` is
    :func:`queued_by_receipt`'s.
    """
    stops = []
    for gap in found_gaps:
        hits = [(q, index.get((q, gap.receipt))) for q in QUEUE_OF[gap.stage]]
        # The queue holding the batch, else the stage's own (the last of them).
        queue, hit = next(((q, h) for q, h in hits if h is not None), hits[-1])
        candids = hit.candids if hit and hit.candids is not None else None
        if candids is None and gap.stage != "ingested":
            candids = batch_candids(valkey, survey, night, gap.receipt)
        stops.append(
            Stop(
                stage=gap.stage,
                queue=f"{prefix}_{queue}",
                state=hit.state if hit else ("partly handled" if gap.handled else "lost"),
                count=gap.missing,
                candids=sorted(candids or [])[:limit],
                receipt=gap.receipt,
                error=hit.error if hit else None,
            )
        )
    return stops


def night_dead_letters(
    index: dict[tuple[str, str], Found], receipts: Iterable[str]
) -> list[dict[str, Any]]:
    """Return the dead letters of a night's batches: queue, alerts and failure."""
    wanted = set(receipts)
    return [
        {
            "queue": f.queue,
            "receipt": receipt,
            "alerts": len(f.candids) if f.candids is not None else None,
            "error": f.error,
        }
        for (_, receipt), f in sorted(index.items())
        if f.state == "dead" and receipt in wanted
    ]

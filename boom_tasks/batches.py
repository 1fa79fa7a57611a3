"""Batches of raw packets in Valkey, between the bridge and the ingest actor.

Dramatiq messages carry a batch *key*, never alert bytes (a batch is ~100 MB).
The bridge stores the packets with :func:`store_batch`, sends one message, and
only then commits its Kafka offsets. The ingest actor reads the batch with
:func:`load_batch` and, once its alerts are written, calls :func:`complete_batch`,
which deletes the payloads and leaves a small "done" marker, so a message
redelivered after completion is recognised instead of reported as lost.

Keys, for survey ``ztf``:
- ``boom:ztf:batch:<uuid>``: list of raw packets (TTL: leak guard only);
- ``boom:ztf:pending``: hash batch key → alert count, summed for backpressure;
- ``boom:ztf:done:<uuid>``: marker of a completed batch (expires after a day).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from boom_tasks.errors import BatchVanished
from boom_tasks.services.valkey import valkey_errors
from boom_tasks.surveys import Survey

#: Seconds a "done" marker lives: longer than any redelivery delay of a message.
DONE_TTL_S = 24 * 3600


@dataclass(frozen=True)
class BatchRef:
    """A stored batch: its key and how many packets it holds."""

    key: str
    count: int


def _pending_key(survey: Survey) -> str:
    return f"boom:{survey.queue_prefix}:pending"


def _done_key(batch_key: str) -> str:
    return batch_key.replace(":batch:", ":done:", 1)


def store_batch(client: redis.Redis, survey: Survey, packets: list[bytes], ttl_s: int) -> BatchRef:
    """Store packets under a new batch key, atomically with its pending count."""
    key = f"boom:{survey.queue_prefix}:batch:{uuid.uuid4().hex}"
    with valkey_errors("storing a batch"):
        pipe = client.pipeline(transaction=True)
        pipe.rpush(key, *packets)
        pipe.expire(key, ttl_s)
        pipe.hset(_pending_key(survey), key, len(packets))
        pipe.execute()
    return BatchRef(key, len(packets))


def load_batch(client: redis.Redis, batch_key: str) -> list[bytes] | None:
    """Return the packets of a batch, or None if it was already completed.

    Raises
    ------
    BatchVanished
        If the batch is neither stored nor completed: its alerts are lost.
    """
    with valkey_errors("loading a batch"):
        packets: list[bytes] = client.lrange(batch_key, 0, -1)  # type: ignore[assignment]
        if packets:
            return packets
        if client.exists(_done_key(batch_key)):
            return None
    raise BatchVanished(
        f"batch {batch_key} is gone from Valkey before ingestion (TTL expired or data "
        "flushed?): its alerts were NOT ingested; replay the night's topic to recover them"
    )


def complete_batch(client: redis.Redis, survey: Survey, batch_key: str) -> None:
    """Delete a batch's payloads and mark it done, once its alerts are stored."""
    with valkey_errors("completing a batch"):
        pipe = client.pipeline(transaction=True)
        pipe.set(_done_key(batch_key), 1, ex=DONE_TTL_S)
        pipe.delete(batch_key)
        pipe.hdel(_pending_key(survey), batch_key)
        pipe.execute()


def pending_alerts(client: redis.Redis, survey: Survey) -> int:
    """Return how many alerts are stored and not yet ingested (the backpressure gauge)."""
    with valkey_errors("reading the pending count"):
        return sum(int(v) for v in client.hvals(_pending_key(survey)))

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

An *orphan* is a pending batch that no message names: its producer (a bridge, a
re-ingest, a batch split in halves) died between storing it and sending its
message. Its alerts are sent again by whoever resends them (the bridge had not
committed its offsets; a split's whole batch is redelivered), so the orphan is
only dead weight, but it counts toward backpressure for ever and makes every
wait for an empty pipeline hang. :func:`reap_orphans` deletes those older than a
bound; the bridge calls it at start and then regularly.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from boom_tasks.broker import NAMESPACE, queue_name
from boom_tasks.errors import BatchVanished
from boom_tasks.services.valkey import valkey_errors
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

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


def _old_pending(client: redis.Redis, survey: Survey, older_than_s: float, ttl_s: int) -> list[str]:
    """Return the pending batches stored more than ``older_than_s`` ago.

    A batch's age is read from its remaining TTL (it was stored with ``ttl_s``); one
    whose payload is already gone is old whatever its age.
    """
    keys = [k.decode() for k in client.hkeys(_pending_key(survey))]  # type: ignore[union-attr]
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.ttl(key)
    return [k for k, ttl in zip(keys, pipe.execute(), strict=True) if ttl < ttl_s - older_than_s]


def batch_queues(survey: Survey) -> list[str]:
    """Return the queues whose messages name the survey's batches.

    Its ingest queue (the bridge's batches, and the halves of a poison batch) and
    its replay queue (a re-ingest's slices, and their halves).
    """
    return [queue_name(survey, "ingest"), queue_name(survey, "replay")]


def _named_batches(client: redis.Redis, survey: Survey, queues: Sequence[str]) -> set[str]:
    """Return the batch keys of the survey that a message of ``queues`` names.

    A message not yet acknowledged is in the queue's ``.msgs`` hash (ready or held
    by a worker), ``.DQ.msgs`` (delayed) or ``.XQ.msgs`` (dead-lettered).
    """
    pattern = re.compile(rb"boom:" + re.escape(survey.queue_prefix.encode()) + rb":batch:[0-9a-f]+")
    named: set[str] = set()
    for queue in queues:
        for suffix in ("", ".DQ", ".XQ"):
            for _, raw in client.hscan_iter(f"{NAMESPACE}:{queue}{suffix}.msgs", count=500):
                named.update(m.decode() for m in pattern.findall(raw))
    return named


def reap_orphans(
    client: redis.Redis, survey: Survey, older_than_s: float, ttl_s: int, queues: Sequence[str]
) -> list[str]:
    """Delete the survey's orphan batches stored more than ``older_than_s`` ago.

    Parameters
    ----------
    client
        Valkey client.
    survey
        The survey (or a replay's batch owner) whose pending batches are examined.
    older_than_s
        Only batches older than this are orphans: a younger one may be between
        its storing and its message (the producer is alive and retrying).
    ttl_s
        The TTL batches are stored with (``bridge.batch_ttl_s``), to read their age.
    queues
        The queues whose messages may name them (:func:`batch_queues`): only these
        are read, not every stage's.

    Returns
    -------
    list of str
        The keys reaped. Costs one ``HKEYS`` and a ``TTL`` per pending batch when
        none is old; the messages are searched only when one is.

    Raises
    ------
    ServiceUnavailable
        If Valkey cannot be reached.
    """
    with valkey_errors("looking for orphan batches"):
        old = _old_pending(client, survey, older_than_s, ttl_s)
        if not old:
            return []
        orphans = sorted(set(old) - _named_batches(client, survey, queues))
        for key in orphans:
            pipe = client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.hdel(_pending_key(survey), key)
            pipe.execute()
    for key in orphans:
        log.warning(
            "%s: reaped orphan batch %s (stored, never sent: its producer died; its "
            "alerts are sent again by the producer's restart)",
            survey.name,
            key,
        )
    return orphans

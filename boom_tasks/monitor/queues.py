"""The Dramatiq queues on Valkey, read and repaired as Dramatiq's Redis broker lays them out.

Per queue ``q`` (namespace ``dramatiq``, see dramatiq/brokers/redis/dispatch.lua):

- ``dramatiq:q`` — a list of the ids of messages ready to run;
- ``dramatiq:q.msgs`` — a hash id → message of every message not yet acknowledged
  (ready, or fetched by a worker: in flight);
- ``dramatiq:q.DQ`` / ``dramatiq:q.DQ.msgs`` — the same for delayed messages
  (retries waiting out their backoff);
- ``dramatiq:q.XQ`` — a sorted set of dead-lettered ids, scored by the time they died,
  with their messages in ``dramatiq:q.XQ.msgs``.

Which queues exist is learnt from the declarations (:mod:`.pipeline`).
A dead letter's failure is read from the result backend, where Dramatiq's Results
middleware stores the exception of every failed message.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis
from dramatiq import Message
from dramatiq.results import ResultFailure, ResultMissing
from dramatiq.results.backends import RedisBackend

from boom_tasks.broker import NAMESPACE
from boom_tasks.errors import BoomError

#: Characters of a message's arguments shown in a listing.
ARGS_PREVIEW = 200

#: Moves one dead letter back to its queue, in one step: either the message is
#: re-enqueued (under a new id, as Dramatiq's enqueue does) and leaves the dead-letter
#: set, or, if another operator got there first, nothing changes.
_REQUEUE = """
if redis.call("hexists", KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hset", KEYS[4], ARGV[2], ARGV[3])
redis.call("rpush", KEYS[3], ARGV[2])
return 1
"""

#: Options a failure leaves on a message; a requeued message starts afresh without them.
_FAILURE_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")


class DeadLetterNotFound(BoomError):
    """The dead letter is gone (requeued or deleted meanwhile, or expired)."""


@dataclass(frozen=True)
class QueueCounts:
    """Messages of one queue by state."""

    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int


@dataclass(frozen=True)
class QueuedMessage:
    """A message as the dashboard lists it."""

    redis_id: str
    message_id: str
    actor: str
    args: str
    enqueued_at: float
    retries: int
    #: Dead letters: when it died, and why (from the result backend).
    died_at: float | None = None
    error: str | None = None


def _text(value: Any) -> str:
    """Return a reply as text (the client answers bytes; its type hints also allow str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _key(queue: str, suffix: str = "") -> str:
    return f"{NAMESPACE}:{queue}{suffix}"


def queue_counts(valkey: redis.Redis, queues: list[str]) -> list[QueueCounts]:
    """Return ready, in-flight, delayed and dead-lettered counts of each queue."""
    pipe = valkey.pipeline(transaction=False)
    for q in queues:
        pipe.llen(_key(q))
        pipe.hlen(_key(q, ".msgs"))
        pipe.hlen(_key(q, ".DQ.msgs"))
        pipe.zcard(_key(q, ".XQ"))
    replies = pipe.execute()
    counts = []
    for i, q in enumerate(queues):
        ready, unacked, delayed, dead = replies[4 * i : 4 * i + 4]
        # A message in the hash but not in the ready list has been fetched by a worker.
        counts.append(QueueCounts(q, ready, max(0, unacked - ready), delayed, dead))
    return counts


def _describe(redis_id: str, data: bytes) -> QueuedMessage:
    message = Message.decode(data)
    args = repr(message.args)
    if len(args) > ARGS_PREVIEW:
        args = args[:ARGS_PREVIEW] + "…"
    return QueuedMessage(
        redis_id=redis_id,
        message_id=message.message_id,
        actor=message.actor_name,
        args=args,
        enqueued_at=message.message_timestamp / 1000.0,
        retries=int(message.options.get("retries", 0)),
    )


def ready_messages(valkey: redis.Redis, queue: str, limit: int) -> list[QueuedMessage]:
    """Return the next ``limit`` messages ready on ``queue``, first to run first."""
    ids = [_text(i) for i in cast(list[Any], valkey.lrange(_key(queue), 0, limit - 1))]
    if not ids:
        return []
    datas = cast(list[Any], valkey.hmget(_key(queue, ".msgs"), ids))
    return [_describe(i, d) for i, d in zip(ids, datas, strict=True) if d is not None]


def _failure(backend: RedisBackend, data: bytes) -> str | None:
    try:
        backend.get_result(Message.decode(data))
    except ResultFailure as e:
        return f"{e.orig_exc_type}: {e.orig_exc_msg}"
    except ResultMissing:
        return None
    return None


def dead_letters(valkey: redis.Redis, queue: str, limit: int) -> list[QueuedMessage]:
    """Return the ``limit`` most recent dead letters of ``queue``, newest first, with why."""
    entries = cast(
        list[tuple[Any, float]],
        valkey.zrevrange(_key(queue, ".XQ"), 0, limit - 1, withscores=True),
    )
    if not entries:
        return []
    ids = [_text(i) for i, _ in entries]
    datas = cast(list[Any], valkey.hmget(_key(queue, ".XQ.msgs"), ids))
    backend = RedisBackend(client=valkey)
    found = []
    for redis_id, (_, died_ms), data in zip(ids, entries, datas, strict=True):
        if data is None:
            continue
        found.append(
            dataclasses.replace(
                _describe(redis_id, data),
                died_at=died_ms / 1000.0,
                error=_failure(backend, data),
            )
        )
    return found


def _fresh(data: bytes) -> tuple[str, bytes]:
    """Return a new broker id and the message without the options its failure left."""
    message = Message.decode(data)
    options: dict[str, Any] = {
        k: v for k, v in message.options.items() if k not in _FAILURE_OPTIONS
    }
    redis_id = str(uuid.uuid4())
    options["redis_message_id"] = redis_id
    fresh: Message[Any] = dataclasses.replace(message, options=options)
    return redis_id, fresh.encode()


def requeue_dead_letter(valkey: redis.Redis, queue: str, redis_id: str) -> str:
    """Put a dead letter back at the end of its queue, with its retries reset.

    Returns the message's new broker id.

    Raises
    ------
    DeadLetterNotFound
        If no such dead letter exists (any more).
    """
    data = cast(bytes | None, valkey.hget(_key(queue, ".XQ.msgs"), redis_id))
    if data is None:
        raise DeadLetterNotFound(f"no dead letter {redis_id} on queue {queue}")
    new_id, new_data = _fresh(data)
    keys = [_key(queue, ".XQ"), _key(queue, ".XQ.msgs"), _key(queue), _key(queue, ".msgs")]
    if not valkey.eval(_REQUEUE, len(keys), *keys, redis_id, new_id, new_data):
        raise DeadLetterNotFound(f"dead letter {redis_id} on queue {queue} was taken meanwhile")
    return new_id


def delete_dead_letter(valkey: redis.Redis, queue: str, redis_id: str) -> None:
    """Drop a dead letter for good.

    Raises
    ------
    DeadLetterNotFound
        If no such dead letter exists (any more).
    """
    pipe = valkey.pipeline(transaction=True)
    pipe.zrem(_key(queue, ".XQ"), redis_id)
    pipe.hdel(_key(queue, ".XQ.msgs"), redis_id)
    removed, _ = pipe.execute()
    if not removed:
        raise DeadLetterNotFound(f"no dead letter {redis_id} on queue {queue}")


def requeue_all_dead_letters(valkey: redis.Redis, queue: str) -> int:
    """Requeue every dead letter of ``queue``, oldest first; return how many were requeued."""
    requeued = 0
    for raw in cast(list[Any], valkey.zrange(_key(queue, ".XQ"), 0, -1)):
        try:
            requeue_dead_letter(valkey, queue, _text(raw))
        except DeadLetterNotFound:
            continue  # taken by another operator meanwhile
        requeued += 1
    return requeued

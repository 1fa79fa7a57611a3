"""Requeue the messages a dead worker process had fetched but not acknowledged.

Dramatiq's Redis broker records every fetched message in a set per (worker, queue),
``dramatiq:__acks__.<worker id>.<queue>``, and removes it on acknowledgement. A
worker that dies leaves its set behind; Dramatiq itself moves such messages back
only during its random "maintenance", and only once the worker's heartbeat is older
than the heartbeat timeout. A supervisor that saw its child die knows the id, so it
can put them back at once with :func:`requeue_worker`.
"""

from __future__ import annotations

import logging

import redis

from boom_tasks.services.valkey import valkey_errors

log = logging.getLogger(__name__)

#: Moves an ack set's messages still awaiting acknowledgement to the front of their
#: queue (they were next in line when their worker died), then deletes the set.
#: KEYS: the ack set, the queue's list, the queue's message hash. Returns the count.
_REQUEUE = """
local ids = redis.call("smembers", KEYS[1])
local n = 0
for _, id in ipairs(ids) do
    if redis.call("hexists", KEYS[3], id) == 1 then
        redis.call("lpush", KEYS[2], id)
        n = n + 1
    end
end
redis.call("del", KEYS[1])
return n
"""


def requeue_worker(client: redis.Redis, namespace: str, worker_id: str) -> int:
    """Requeue every message worker ``worker_id`` fetched and never acknowledged.

    Call it only once the worker process is dead: a live worker would later
    acknowledge a message that another worker is processing again. Idempotent.

    Parameters
    ----------
    client
        A Valkey client.
    namespace
        Dramatiq's key namespace (:data:`boom_tasks.broker.NAMESPACE`).
    worker_id
        The dead process's broker id.

    Returns
    -------
    int
        The number of messages put back on their queues.

    Raises
    ------
    ServiceUnavailable
        If Valkey cannot be reached (the broker's own maintenance is the fallback).
    """
    prefix = f"{namespace}:__acks__.{worker_id}."
    moved = 0
    with valkey_errors(f"requeueing the messages of worker {worker_id}"):
        script = client.register_script(_REQUEUE)
        for raw in list(client.scan_iter(match=f"{prefix}*", count=1000)):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            queue = f"{namespace}:{key[len(prefix) :]}"
            moved += int(script(keys=[key, queue, f"{queue}.msgs"]))
        # Gone for good: Dramatiq's maintenance need not look at this worker again.
        client.zrem(f"{namespace}:__heartbeats__", worker_id)
    if moved:
        log.warning("requeued %d unacknowledged messages of dead worker %s", moved, worker_id)
    return moved

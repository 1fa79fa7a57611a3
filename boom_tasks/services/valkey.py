"""Valkey client, one per process, and the translation of its driver's errors.

Valkey speaks the Redis protocol; the ``redis`` package is the driver (Dramatiq's
Redis broker uses it too).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from boom_tasks.errors import ConfigError, NotDurable, PermanentError, ServiceUnavailable
from boom_tasks.settings import ValkeySettings

log = logging.getLogger(__name__)

#: Key a hand-off writes just before it waits for durability. ``WAITAOF`` waits for
#: the calling connection's own last write; the AOF is one sequential log, so once
#: that write is fsynced, every earlier write of any connection (the batch, the
#: message Dramatiq enqueued on its own connection) is on disk too.
SEQUENCE_KEY = "boom:durability:seq"

_client: redis.Redis | None = None
_client_key: tuple[int, str] | None = None


def get_client(valkey: ValkeySettings) -> redis.Redis:
    """Return this process's client (re-created after a fork), with bytes replies."""
    global _client, _client_key
    key = (os.getpid(), valkey.url)
    if _client is None or _client_key != key:
        _client = redis.Redis.from_url(valkey.url, socket_connect_timeout=5)
        _client_key = key
    return _client


def results_client(valkey: ValkeySettings) -> redis.Redis:
    """Return a client for Dramatiq's result backend, whose reads may block for minutes.

    A replay awaits each slice's result with a blocking read of up to
    ``replays.slice_timeout_s``; redis-py 8 gives every read a 5 s socket timeout by
    default, which ended each wait for a slice slower than that in a TimeoutError.
    """
    return redis.Redis.from_url(valkey.url, socket_timeout=None, socket_connect_timeout=5)


@contextmanager
def valkey_errors(what: str) -> Iterator[None]:
    """Translate driver exceptions raised inside the block.

    Raises
    ------
    ServiceUnavailable
        Connection refused, reset or timed out (worth a retry).
    PermanentError
        Any other server error.
    """
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ServiceUnavailable(f"Valkey unavailable while {what}: {e}") from None
    except redis.RedisError as e:
        raise PermanentError(f"Valkey error while {what}: {e}") from None


@contextmanager
def best_effort(what: str) -> Iterator[None]:
    """Run the block; on any Valkey error, log a warning and go on.

    For bookkeeping that must never fail the work it describes (the dashboard's
    counters, the cost account): a lost increment is better than a failed batch.
    """
    try:
        yield
    except redis.RedisError as e:
        log.warning("could not %s: %s", what, e)


def wait_durable(client: redis.Redis, valkey: ValkeySettings, what: str) -> None:
    """Return once Valkey has made every write so far durable, as ``valkey`` asks.

    Parameters
    ----------
    client
        This process's client.
    valkey
        ``durable_local`` (fsynced in this server's AOF), ``durable_replicas`` (in
        that many replicas' AOF) and ``durable_timeout_ms``.
    what
        What is being made durable, for messages.

    Raises
    ------
    NotDurable
        If the server did not confirm within the timeout (the caller retries).
    ConfigError
        If ``durable_local`` is asked of a server without an append-only file.
    ServiceUnavailable
        If Valkey cannot be reached.
    """
    local, replicas = int(valkey.durable_local), valkey.durable_replicas
    if not local and not replicas:
        return
    try:
        pipe = client.pipeline(transaction=False)  # one connection: the INCR is ours
        pipe.incr(SEQUENCE_KEY)
        pipe.execute_command("WAITAOF", local, replicas, valkey.durable_timeout_ms)
        _, (got_local, got_replicas) = pipe.execute()
    except redis.ResponseError as e:
        if "appendonly" in str(e):
            raise ConfigError(
                f"valkey.durable_local needs the append-only file on the server "
                f"(appendonly yes), or durable_local: false: {e}"
            ) from None
        raise PermanentError(f"Valkey error while making {what} durable: {e}") from None
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise ServiceUnavailable(f"Valkey unavailable while making {what} durable: {e}") from None
    if got_local < local or got_replicas < replicas:
        raise NotDurable(
            f"Valkey confirmed {what} in {got_local} local AOF and {got_replicas} replica(s) "
            f"within {valkey.durable_timeout_ms} ms; {local} and {replicas} are required"
        )

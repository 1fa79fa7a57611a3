"""Valkey client, one per process, and the translation of its driver's errors.

Valkey speaks the Redis protocol; the ``redis`` package is the driver (Dramatiq's
Redis broker uses it too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from boom_tasks.errors import PermanentError, ServiceUnavailable
from boom_tasks.settings import ValkeySettings

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

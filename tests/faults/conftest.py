"""Fixtures of the fault tests: the chain's queues and the fault trace left clean."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from boom_tasks.broker import NAMESPACE
from boom_tasks.chain import CHAIN
from tests.faults.hooks import TRACE_KEY


def clean_queues(url: str) -> None:
    """Delete the ZTF stage queues, their dead letters, in-flight sets and the trace."""
    client = redis.Redis.from_url(url)
    keys = [TRACE_KEY]
    for stage in CHAIN:
        queue = f"{NAMESPACE}:ztf_{stage.name}"
        keys += [queue + s for s in ("", ".msgs", ".DQ", ".DQ.msgs", ".XQ", ".XQ.msgs")]
    client.delete(*keys)
    for key in client.scan_iter(match=f"{NAMESPACE}:__acks__.*"):
        client.delete(key)
    client.delete("boom:ztf:pending")


@pytest.fixture
def clean_chain(services) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Empty ZTF queues before and after a test that runs real workers."""
    clean_queues(services.valkey.url)
    yield
    clean_queues(services.valkey.url)

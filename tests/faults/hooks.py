"""Test-only fault hooks, loaded into real worker processes with ``--module tests.faults.hooks``.

``boom-workers --module tests.faults.hooks`` makes each ``dramatiq`` worker import
this module after the broker: it adds :class:`FaultHooks` to the broker, after the
poison guard, so the guard counts a delivery before a hook kills the process.
Environment variables choose what it does:

- ``BOOM_FAULT_TRACE=1``: note each process boot and each message's start and end
  in the Valkey list :data:`TRACE_KEY` (JSON: event, message id, actor, pid, time);
- ``BOOM_FAULT_KILL_CANDID=<candid>``: SIGKILL the process on any stage message
  after ingest whose candids include it (a native crash, as seen by the broker);
- ``BOOM_FAULT_KILL_MARKER=<text>``: SIGKILL the process on an ingest batch holding a
  packet that contains those bytes;
- ``BOOM_FAULT_HOLD=<actor>:<seconds>``: sleep before each message of ``actor``, so a
  test can kill a worker while it holds the message.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from boom_tasks.batches import load_batch
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import get_settings

#: Valkey list of trace records.
TRACE_KEY = "boom:faults:trace"


def trace(event: str, **fields: Any) -> None:
    """Append one trace record (Valkey list :data:`TRACE_KEY`)."""
    record = {"event": event, "pid": os.getpid(), "t": time.time(), **fields}
    # A record lost while Valkey restarts is only a gap in the trace: the hook must
    # never be what kills a worker.
    with contextlib.suppress(redis.RedisError):
        get_client(get_settings().valkey).rpush(TRACE_KEY, json.dumps(record))


def read_trace(client: Any) -> list[dict[str, Any]]:
    """Return every trace record so far."""
    return [json.loads(r) for r in client.lrange(TRACE_KEY, 0, -1)]


class FaultHooks(Middleware):
    """Trace, hold or kill on chosen messages (see the module's docstring)."""

    def __init__(self) -> None:
        self.tracing = os.environ.get("BOOM_FAULT_TRACE") == "1"
        candid = os.environ.get("BOOM_FAULT_KILL_CANDID")
        self.kill_candid = int(candid) if candid else None
        marker = os.environ.get("BOOM_FAULT_KILL_MARKER")
        self.kill_marker = marker.encode() if marker else None
        actor, _, seconds = os.environ.get("BOOM_FAULT_HOLD", "").partition(":")
        self.hold = (actor, float(seconds)) if actor else None

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        """Trace the start; hold; kill this process if the message is the chosen one."""
        if self.tracing:
            trace("start", id=message.message_id, actor=message.actor_name)
        if self.hold and message.actor_name == self.hold[0]:
            time.sleep(self.hold[1])
        if self._chosen(message):
            os.kill(os.getpid(), signal.SIGKILL)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Trace the end of a message the process survived."""
        if self.tracing:
            trace("end", id=message.message_id, actor=message.actor_name, ok=exception is None)

    def _chosen(self, message: MessageProxy) -> bool:
        if message.actor_name.endswith("_ingest"):
            if self.kill_marker is None:
                return False
            key = message.args[0] if message.args else message.kwargs["batch_key"]
            packets = load_batch(get_client(get_settings().valkey), key) or []
            return any(self.kill_marker in p for p in packets)
        candids = message.args[0] if message.args else message.kwargs.get("candids", [])
        return self.kill_candid is not None and self.kill_candid in candids


_hooks = FaultHooks()
dramatiq.get_broker().add_middleware(_hooks)
if _hooks.tracing:
    trace("boot")

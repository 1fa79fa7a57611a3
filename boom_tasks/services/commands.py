"""What this process asks of MongoDB: commands, their time, documents and bytes, per label.

A pymongo command listener (:class:`CommandCounter`) registered on the process's client
when ``mongo.command_monitoring`` is on. pymongo calls it in the thread that sent the
command, so each thread names what it is doing (:meth:`CommandCounter.set_label`, e.g.
the stage of the message in hand) and the counts add up per label. Used by the pipeline
benchmark's cost account (docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import bson
from pymongo import monitoring

#: Label of commands sent by a thread that named nothing.
UNLABELLED = "other"
#: Commands whose reply carries documents read (a cursor's first or next batch).
READS = {"find": "firstBatch", "aggregate": "firstBatch", "getMore": "nextBatch"}
#: Commands writing documents, and the reply field counting them (an update also
#: counts its upserts; a findAndModify writes at most one).
WRITES = {"insert": "n", "update": "nModified", "delete": "n", "findAndModify": None}


class CommandCounter(monitoring.CommandListener):
    """Count commands, driver-measured time, documents and bytes read and written, per label.

    Time is pymongo's ``duration_micros``: from sending the command to decoding its
    reply, the server's work plus the round trip. Bytes are BSON sizes of the commands
    written and of the replies read (re-encoded: a cost paid only when counting).
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._totals: dict[str, Counter[str]] = {}

    def set_label(self, label: str | None) -> None:
        """Name what this thread's next commands are for (None: :data:`UNLABELLED`)."""
        self._local.label = label or UNLABELLED

    def _add(self, **amounts: float) -> None:
        label = getattr(self._local, "label", UNLABELLED)
        with self._lock:
            self._totals.setdefault(label, Counter()).update(amounts)
        # This thread's own running tally, read without a lock by the worker's
        # per-message cost account (boom_tasks.monitor.costs).
        local = self._local
        local.commands = getattr(local, "commands", 0.0) + amounts.get("commands", 0.0)
        local.seconds = getattr(local, "seconds", 0.0) + amounts.get("seconds", 0.0)

    def thread_tally(self) -> tuple[float, float]:
        """Return the commands this thread has sent, and their time in seconds, so far."""
        return getattr(self._local, "commands", 0.0), getattr(self._local, "seconds", 0.0)

    def take(self) -> dict[str, dict[str, float]]:
        """Return the totals per label since the last call, and start again from zero."""
        with self._lock:
            totals, self._totals = self._totals, {}
        return {label: dict(counts) for label, counts in totals.items()}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """Count the bytes of a write command (its documents travel in it)."""
        if event.command_name in WRITES:
            self._add(bytes_written=len(bson.encode(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Count the command, its time, and the documents it read or wrote."""
        reply: Any = event.reply
        amounts = {"commands": 1.0, "seconds": event.duration_micros / 1e6}
        name = event.command_name
        if name in READS:
            batch = (reply.get("cursor") or {}).get(READS[name]) or []
            amounts["docs_read"] = len(batch)
            amounts["bytes_read"] = len(bson.encode(reply))
        elif name in WRITES:
            field = WRITES[name]
            written = reply.get(field, 0) if field else 1
            amounts["docs_written"] = written + len(reply.get("upserted") or [])
            amounts["writes"] = 1.0
        self._add(**amounts)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Count a failed command and its time."""
        self._add(commands=1.0, failed=1.0, seconds=event.duration_micros / 1e6)


#: This process's counter (a fork inherits counts; the benchmark takes them per message).
COMMANDS = CommandCounter()

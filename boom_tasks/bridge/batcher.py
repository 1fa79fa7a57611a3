"""Collecting consumed Kafka messages into batches (pure: no Kafka, no Valkey).

A batch is ready when it holds ``max_size`` packets or its first packet has
waited ``max_wait_s``. It remembers, per partition, the offset to commit once
the batch is safely queued: the last offset seen plus one, as Kafka expects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Batch:
    """Packets consumed since the last flush, and where to commit after them."""

    packets: list[bytes] = field(default_factory=list)
    #: (topic, partition) → next offset to consume.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: (topic, partition) → first offset consumed (the night report's Kafka span).
    first_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: Wall-clock time (Unix seconds) the first packet was received.
    received_at: float | None = None
    #: Monotonic time of the first packet, for the wait limit.
    started: float | None = None

    def __len__(self) -> int:
        return len(self.packets)


class Batcher:
    """Accumulate packets until a batch is full or old enough.

    Parameters
    ----------
    max_size
        Packets per batch.
    max_wait_s
        Seconds after its first packet that a partial batch is sent anyway.
    """

    def __init__(self, max_size: int, max_wait_s: float) -> None:
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.batch = Batch()

    def add(self, topic: str, partition: int, offset: int, packet: bytes) -> None:
        """Add one consumed message."""
        if self.batch.started is None:
            self.batch.started = time.monotonic()
            self.batch.received_at = time.time()
        self.batch.packets.append(packet)
        key = (topic, partition)
        self.batch.next_offsets[key] = max(self.batch.next_offsets.get(key, 0), offset + 1)
        self.batch.first_offsets.setdefault(key, offset)

    def full(self) -> bool:
        """Tell whether the batch reached its size limit."""
        return len(self.batch) >= self.max_size

    def due(self) -> bool:
        """Tell whether the batch is non-empty and full or past its wait limit."""
        if self.batch.started is None:
            return False
        return self.full() or time.monotonic() - self.batch.started >= self.max_wait_s

    def remaining_wait(self) -> float:
        """Seconds until a partial batch is due (``max_wait_s`` when empty)."""
        if self.batch.started is None:
            return self.max_wait_s
        return max(0.0, self.max_wait_s - (time.monotonic() - self.batch.started))

    def take(self) -> Batch:
        """Return the current batch and start a new one."""
        batch, self.batch = self.batch, Batch()
        return batch

"""Produce a night's packets to Kafka, as-is, optionally paced like the telescope.

Step 1: create the topic (with the configured partitions) if it is missing.
Step 2: send every packet unmodified, keyed by its file name when it has one;
        a full local queue is drained by polling, never by dropping a packet.
Step 3: optionally pace the stream in visit-sized bursts, as the LSST
        ``alert_stream`` demo does: send ``burst_size`` alerts, then wait until
        ``burst_interval_s`` has passed since the burst started.
Step 4: flush, and fail loudly if any packet was not acknowledged by Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from tqdm import tqdm

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.services.kafka import ensure_topic, kafka_errors, producer_config
from boom_tasks.settings import Settings, get_settings
from boom_tasks.surveys.base import Survey

#: Seconds to wait for Kafka to acknowledge every packet before declaring it unavailable.
FLUSH_TIMEOUT_S = 120.0

#: Seconds to serve delivery reports when the local queue is full, before retrying.
FULL_QUEUE_POLL_S = 0.5

#: A packet, or a ``(key, packet)`` pair; the key is the file name when known.
Item = bytes | tuple[str | None, bytes]


@dataclass
class _Deliveries:
    """Delivery reports: how many failed, and the first reason (enough to act on)."""

    failed: int = 0
    first_error: KafkaError | None = field(default=None)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            self.first_error = self.first_error or err


def produce_packets(
    settings: Settings | None,
    topic: str,
    packets: Iterable[Item],
    *,
    burst_size: int | None = None,
    burst_interval_s: float = 0.0,
    progress: bool = True,
    total: int | None = None,
    create_topic: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """Send packets, unmodified, to a Kafka topic and wait until all are acknowledged.

    Parameters
    ----------
    settings
        Settings of this process; ``None`` means :func:`~boom_tasks.settings.get_settings`.
    topic
        Destination topic.
    packets
        Raw packets, or ``(key, packet)`` pairs (a ``None`` key sends no key).
    burst_size
        Send this many packets at a time, then wait (see ``burst_interval_s``);
        ``None`` sends as fast as Kafka accepts.
    burst_interval_s
        Seconds from the start of one burst to the start of the next: ZTF sends
        one exposure's alerts (~1 visit per 30-40 s) at once.
    progress
        Show a progress bar (it hides itself anyway when stderr is not a terminal).
    total
        Expected number of packets, for the progress bar only.
    create_topic
        Create ``topic`` first with the configured partitions, if it is missing.
    overrides
        librdkafka settings replacing those of
        :func:`~boom_tasks.services.kafka.producer_config` (benchmarks, tests).

    Returns
    -------
    int
        Number of packets produced (and acknowledged).

    Raises
    ------
    ServiceUnavailable
        If Kafka cannot be reached, refuses a packet, or has not acknowledged
        every packet within ``FLUSH_TIMEOUT_S`` seconds.
    """
    if burst_size is not None and burst_size < 1:
        raise ValueError(f"burst_size must be at least 1, got {burst_size}")
    settings = settings or get_settings()
    if create_topic:
        ensure_topic(settings.kafka, topic)
    producer = Producer(producer_config(settings.kafka, **(overrides or {})))
    deliveries = _Deliveries()
    sent = 0
    burst_started = time.monotonic()
    with tqdm(total=total, unit="alert", desc=topic, disable=None if progress else True) as bar:
        for item in packets:
            # Wait before a new burst, not after one: the last burst needs no wait.
            if burst_size is not None and sent and sent % burst_size == 0:
                _wait_until(producer, burst_started + burst_interval_s)
                burst_started = time.monotonic()
            key, value = item if isinstance(item, tuple) else (None, item)
            _produce(producer, topic, key, value, deliveries)
            sent += 1
            bar.update()
    _flush(producer, topic, sent, deliveries)
    return sent


def produce_night(
    settings: Settings | None,
    survey: Survey,
    date: str,
    source: Path | str,
    *,
    burst_size: int | None = None,
    burst_interval_s: float = 0.0,
    progress: bool = True,
    topic: str | None = None,
) -> int:
    """Produce every packet of one night to the survey's topic of that night.

    Parameters
    ----------
    settings
        Settings of this process; ``None`` means :func:`~boom_tasks.settings.get_settings`.
    survey
        The survey whose nightly topic receives the packets.
    date
        Night as ``YYYYMMDD``; names the topic (``survey.topic(date)``).
    source
        The night's ``.tar.gz`` or a folder of ``*.avro`` packets (read by the
        survey's replay source, in its wire format).
    burst_size, burst_interval_s, progress
        As for :func:`produce_packets`.
    topic
        Send to this topic instead of the survey's topic of ``date``.

    Returns
    -------
    int
        Number of packets produced.

    Raises
    ------
    ArchiveError
        If ``source`` cannot be read.
    ServiceUnavailable
        If Kafka cannot be reached or does not acknowledge every packet.
    """
    # Fails before the topic is created if source is wrong.
    packets = survey.replay.iter_packets(source)
    return produce_packets(
        settings,
        topic or survey.topic(date),
        packets,
        burst_size=burst_size,
        burst_interval_s=burst_interval_s,
        progress=progress,
        total=survey.replay.count_packets(source),
    )


def _produce(
    producer: Producer, topic: str, key: str | None, value: bytes, on_delivery: Any
) -> None:
    """Queue one packet; while the local queue is full, serve delivery reports and retry."""
    while True:
        try:
            with kafka_errors(f"refused a packet for {topic}"):
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        except BufferError:
            # The queue empties as Kafka acknowledges; polling is what lets it drain.
            producer.poll(FULL_QUEUE_POLL_S)
            continue
        producer.poll(0)  # serve delivery callbacks as we go, or they pile up
        return


def _wait_until(producer: Producer, deadline: float) -> None:
    """Sleep until ``deadline`` (monotonic clock), serving delivery reports meanwhile."""
    while (left := deadline - time.monotonic()) > 0:
        producer.poll(min(left, 1.0))


def _flush(producer: Producer, topic: str, sent: int, deliveries: _Deliveries) -> None:
    """Wait for every acknowledgement; raise if any packet is undelivered or failed."""
    remaining = producer.flush(FLUSH_TIMEOUT_S)
    if remaining:
        raise ServiceUnavailable(
            f"{remaining} of {sent} packets for {topic} were not acknowledged by Kafka "
            f"within {FLUSH_TIMEOUT_S:.0f}s"
        )
    if deliveries.failed:
        raise ServiceUnavailable(
            f"{deliveries.failed} of {sent} packets for {topic} failed delivery; "
            f"first error: {deliveries.first_error}"
        )

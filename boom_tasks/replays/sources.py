"""Where a re-ingested night's packets come from: the survey's archive, or a Kafka topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError

from boom_tasks.errors import BoomError, ServiceUnavailable
from boom_tasks.services.kafka import consumer_config
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey

#: Seconds without a message before a topic read to its end is taken as finished.
TOPIC_IDLE_S = 10.0


def archive_packets(survey: Survey, source: Path) -> tuple[Iterator[bytes], int | None]:
    """Return the packets of an archive folder or tarball, and their number if known."""
    packets = (data for _name, data in survey.replay.iter_packets(source))
    return packets, survey.replay.count_packets(source)


def topic_packets(settings: Settings, topic: str) -> Iterator[bytes]:
    """Yield every packet of ``topic`` from its start, stopping at its end.

    A group of its own, never committed: the bridge's offsets are not touched.

    Raises
    ------
    BoomError
        If the topic does not exist.
    ServiceUnavailable
        On a fatal consumer error.
    """
    group = f"boom-replay-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(settings.kafka, group))
    consumer.subscribe([topic])
    assigned: set[int] = set()
    at_end: set[int] = set()
    try:
        # Until every assigned partition reported its end (or nothing came for a while).
        while not assigned or not at_end >= assigned:
            msg = consumer.poll(TOPIC_IDLE_S)
            if msg is None:
                break
            err = msg.error()
            assigned = {p.partition for p in consumer.assignment()}
            if err is None:
                at_end.discard(int(msg.partition() or 0))
                yield msg.value() or b""
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add(int(msg.partition() or 0))
            elif err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise BoomError(f"topic {topic} does not exist on Kafka")
            elif err.fatal():
                raise ServiceUnavailable(f"fatal Kafka consumer error: {err.str()}")
    finally:
        consumer.close()


def reingest_source(
    settings: Settings, survey: Survey, params: dict[str, Any]
) -> tuple[Iterator[bytes], int | None]:
    """Return the packets a re-ingest reads (``topic_in``, ``source`` or the public night)."""
    if params.get("topic_in"):
        return topic_packets(settings, params["topic_in"]), None
    from boom_tasks.replay.cli import night_source

    source = params.get("source")
    path = night_source(survey, params["night"], Path(source) if source else None, False)
    return archive_packets(survey, path)

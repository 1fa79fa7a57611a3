"""Kafka clients (confluent-kafka) and the translation of their errors."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.settings import KafkaSettings

log = logging.getLogger(__name__)


class _Once(logging.Filter):
    """Let each distinct message through once per interval.

    librdkafka logs a line for every failed reconnect (20 a second against a dead
    broker); one line per problem every half-minute says the same thing.
    """

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        now = time.monotonic()
        if now - self.seen.get(text, -self.interval_s) < self.interval_s:
            return False
        self.seen[text] = now
        return True


#: Logger that receives librdkafka's own log lines (config key ``logger``).
RDKAFKA_LOG = logging.getLogger("librdkafka")
RDKAFKA_LOG.addFilter(_Once())

#: Seconds to wait for cluster metadata before declaring Kafka unreachable; short,
#: because the caller retries with backoff and logs each failed attempt.
METADATA_TIMEOUT_S = 5.0


def producer_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """Return a producer configuration for this cluster.

    Alerts are 60-140 KB, so messages up to 10 MB are allowed and batches are
    compressed; ``extra`` overrides any key.
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "logger": RDKAFKA_LOG,
        "message.max.bytes": 10_000_000,
        "linger.ms": 50,
        "compression.type": "zstd",
        "enable.idempotence": True,
    }
    conf.update(extra)
    return conf


def consumer_config(kafka: KafkaSettings, group_id: str, **extra: Any) -> dict[str, Any]:
    """Return a consumer configuration: manual commits, start from the earliest offset.

    Auto-commit is off because the bridge commits only after a batch is safely
    queued (at-least-once delivery).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "logger": RDKAFKA_LOG,
        "group.id": group_id,
        "session.timeout.ms": kafka.session_timeout_ms,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.message.max.bytes": 10_000_000,
        "enable.partition.eof": True,
    }
    conf.update(extra)
    return conf


def admin(kafka: KafkaSettings) -> AdminClient:
    """Return an admin client for this cluster."""
    conf: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers, "logger": RDKAFKA_LOG}
    return AdminClient(conf)


def check_reachable(kafka: KafkaSettings, timeout: float = METADATA_TIMEOUT_S) -> None:
    """Fetch cluster metadata or raise :class:`ServiceUnavailable`."""
    try:
        md = admin(kafka).list_topics(timeout=timeout)
    except KafkaException as e:
        raise ServiceUnavailable(
            f"Kafka at {kafka.bootstrap_servers} is unreachable: {e.args[0]}"
        ) from None
    if not md.brokers:
        raise ServiceUnavailable(f"Kafka at {kafka.bootstrap_servers} reports no broker")


def ensure_topic(kafka: KafkaSettings, topic: str, partitions: int | None = None) -> None:
    """Create ``topic`` if it does not exist (an existing topic is left as it is)."""
    client = admin(kafka)
    n = partitions or kafka.partitions
    futures = client.create_topics([NewTopic(topic, num_partitions=n, replication_factor=1)])
    try:
        futures[topic].result(timeout=METADATA_TIMEOUT_S)
        log.info("created topic %s with %d partition(s)", topic, n)
    except TimeoutError:
        raise ServiceUnavailable(
            f"Kafka at {kafka.bootstrap_servers} did not answer when creating {topic}"
        ) from None
    except KafkaException as e:
        err = e.args[0]
        if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise ServiceUnavailable(f"cannot create topic {topic}: {err}") from None

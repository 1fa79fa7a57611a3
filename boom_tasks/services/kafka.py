"""Kafka clients (confluent-kafka) and the translation of their errors."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from boom_tasks.errors import ConfigError, ServiceUnavailable
from boom_tasks.settings import KafkaSettings

log = logging.getLogger(__name__)


#: The timing librdkafka appends to a failed connection ("(after 309ms in state AUTH_REQ)").
_TIMING = re.compile(r" ?\(after \d+ms in state \w+\)")


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
        # A refused login is reported with its timing; the same refusal is one problem.
        text = _TIMING.sub("", record.getMessage())
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


@contextmanager
def kafka_errors(what: str) -> Iterator[None]:
    """Translate the Kafka client's failures raised inside the block.

    Raises
    ------
    ServiceUnavailable
        A ``KafkaException`` or a timeout (an admin request's future not done).
    """
    try:
        yield
    except (KafkaException, TimeoutError) as e:
        raise ServiceUnavailable(f"Kafka: {what}: {e}") from None


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


class KafkaAuthFailed(ConfigError):
    """Kafka refused the client's SASL login: wrong username, password or mechanism.

    Permanent: librdkafka would retry the same credentials forever, so the caller
    stops with this message instead.
    """


class ClientErrors:
    """The ``error_cb`` of a librdkafka client: remembers a refused login.

    librdkafka reports a refused login only through this callback (or a log line)
    and keeps retrying; :meth:`raise_if_refused` turns it into
    :class:`KafkaAuthFailed`. Other client-wide errors (brokers down) are logged
    when ``log_others``, as librdkafka logs them when no callback is set.

    Parameters
    ----------
    servers
        The cluster's bootstrap servers, for the message.
    username
        The SASL username in use (never the password), for the message.
    log_others
        Log the errors that are not a refused login.
    """

    def __init__(self, servers: str, username: str | None, log_others: bool = True) -> None:
        self.servers, self.username, self.log_others = servers, username, log_others
        self.refused: str | None = None

    def __call__(self, err: KafkaError) -> None:
        """Record a refused login; log any other error (librdkafka's ``error_cb``)."""
        if err.code() == KafkaError._AUTHENTICATION:
            self.refused = err.str()
        elif self.log_others:
            RDKAFKA_LOG.warning("%s (librdkafka keeps retrying)", err.str())

    def raise_if_refused(self) -> None:
        """Raise :class:`KafkaAuthFailed` if Kafka has refused the login.

        Raises
        ------
        KafkaAuthFailed
            With librdkafka's reason, which names the mechanism but no secret.
        """
        if self.refused is not None:
            reason = _TIMING.sub("", self.refused)
            raise KafkaAuthFailed(
                f"Kafka at {self.servers} refused the login of user {self.username!r}: {reason}"
            )


def admin(kafka: KafkaSettings, **extra: Any) -> AdminClient:
    """Return an admin client for this cluster; ``extra`` adds librdkafka keys (security)."""
    conf: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers, "logger": RDKAFKA_LOG}
    conf.update(extra)
    return AdminClient(conf)


def check_reachable(
    kafka: KafkaSettings, timeout: float = METADATA_TIMEOUT_S, **extra: Any
) -> None:
    """Fetch cluster metadata or raise.

    Parameters
    ----------
    kafka
        The cluster.
    timeout
        Seconds to wait for metadata.
    **extra
        librdkafka keys added to the client's configuration (``security.protocol``,
        ``sasl.*``).

    Raises
    ------
    ServiceUnavailable
        If no broker answers in time (transient: the caller retries).
    KafkaAuthFailed
        If a broker refused the SASL login (permanent).
    """
    errors = ClientErrors(kafka.bootstrap_servers, extra.get("sasl.username"), log_others=False)
    client = admin(kafka, error_cb=errors, **extra)
    try:
        md = client.list_topics(timeout=timeout)
    except KafkaException as e:
        # A refused login surfaces as a metadata timeout; the callbacks tell why.
        client.poll(0)
        errors.raise_if_refused()
        raise ServiceUnavailable(
            f"Kafka at {kafka.bootstrap_servers} is unreachable: {e.args[0]}"
        ) from None
    if not md.brokers:
        raise ServiceUnavailable(f"Kafka at {kafka.bootstrap_servers} reports no broker")


def ensure_topic(
    kafka: KafkaSettings, topic: str, partitions: int | None = None, **extra: Any
) -> None:
    """Create ``topic`` if it does not exist (an existing topic is left as it is).

    ``extra`` adds librdkafka keys to the admin client's configuration (security).
    """
    client = admin(kafka, **extra)
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

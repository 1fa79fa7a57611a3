"""The bridge loop: Kafka topic → batches in Valkey → one Dramatiq message each.

Step 0: find the survey's cluster and login (``intake.py``): Rubin's alerts come
        from Rubin's cluster, with SCRAM credentials.
Step 1: wait until Kafka answers (clear log lines, backoff, no traceback loop);
        a refused login stops the bridge with a configuration error, since
        retrying the same credentials cannot help.
Step 2: consume into a batch until it is full or old enough.
Step 3: store the batch in Valkey, send ONE message to the survey's ingest actor,
        then commit the batch's offsets: a crash anywhere before the commit
        means Kafka redelivers, never that an alert is lost.
Step 4: pause consuming while too many alerts wait for ingestion; resume below
        a lower mark. Now and then, delete the orphan batches a bridge killed
        between steps 3's store and send left (``batches.reap_orphans``).
Step 5: following the nights (``nights.py``): at the UTC boundary, subscribe to
        the new night's topic beside the old one; drop the old one once consumed.
On SIGINT/SIGTERM the batch in hand is finished and committed before exiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from boom_tasks.batches import BatchRef, batch_queues, pending_alerts, reap_orphans, store_batch
from boom_tasks.bridge.batcher import Batch, Batcher
from boom_tasks.bridge.intake import intake_kafka
from boom_tasks.bridge.nights import NightFollower
from boom_tasks.conductor.counters import record_received
from boom_tasks.errors import BoomError, ConfigError, ServiceUnavailable, TransientError
from boom_tasks.monitor.stats import record_stage
from boom_tasks.retry import retry_transient
from boom_tasks.services.kafka import (
    ClientErrors,
    KafkaAuthFailed,
    check_reachable,
    consumer_config,
)
from boom_tasks.services.valkey import get_client, valkey_errors, wait_durable
from boom_tasks.settings import KafkaSettings, Settings
from boom_tasks.surveys import Survey
from boom_tasks.surveys.base import tonight

log = logging.getLogger(__name__)

#: Sends one batch to the ingest stage: (batch reference, receive time) → None.
Sender = Callable[[BatchRef, float], None]

#: Seconds between two reads of the pending-alert gauge (backpressure check).
BACKPRESSURE_CHECK_S = 0.5

#: Seconds between two repeats of the same Kafka error in the log.
ERROR_LOG_INTERVAL_S = 30.0


def bridge_group(kafka: KafkaSettings, survey: Survey) -> str:
    """Return the bridge's consumer group for ``survey`` (``<kafka.group_id>-<prefix>``)."""
    return f"{kafka.group_id}-{survey.queue_prefix}"


class TopicMissing(BoomError):
    """The topic does not exist and the bridge was asked to stop at its end."""


@dataclass
class BridgeStats:
    """Counts of one bridge run, printed at exit."""

    consumed: int = 0
    batches: int = 0
    pauses: int = 0


class Bridge:
    """Consume one survey topic and feed the survey's ingest actor.

    The topic is read from the survey's own cluster, with its login
    (:func:`~boom_tasks.bridge.intake.intake_kafka`).

    Parameters
    ----------
    settings
        Process settings.
    survey
        The survey whose ingest actor receives the batches.
    topic
        Kafka topic to consume.
    send
        How a stored batch reaches the ingest stage (a Dramatiq ``send``).
    exit_on_eof
        Stop once every assigned partition is consumed to its end.
    night
        The night (``YYYYMMDD``) the alerts belong to in the night report
        (default: the UTC date each batch is received).
    nights
        Follow the nights: move to each new night's topic at the UTC boundary
        (``topic`` is then the current night's), finishing the previous one.

    Raises
    ------
    ConfigError
        If the survey's intake login is incomplete.
    """

    def __init__(
        self,
        settings: Settings,
        survey: Survey,
        topic: str,
        send: Sender,
        exit_on_eof: bool = False,
        night: str | None = None,
        nights: NightFollower | None = None,
    ) -> None:
        self.settings, self.survey, self.topic = settings, survey, topic
        self.nights = nights
        #: Topics subscribed to: the current night's last, a previous one being finished first.
        self.topics = [topic]
        #: The night the consumed alerts are counted on in the night report (default: the
        #: UTC date of receipt); a bridge following the nights moves it at the boundary.
        self.night = night or (nights.night() if nights else None)
        self.send, self.exit_on_eof = send, exit_on_eof
        # The security keys hold the password in clear: they go to librdkafka, never to a log.
        self.kafka, self._security = intake_kafka(settings, survey)
        self._errors = ClientErrors(
            self.kafka.bootstrap_servers, self._security.get("sasl.username")
        )
        self.batcher = Batcher(settings.bridge.batch_size, settings.bridge.batch_wait_s)
        self.valkey = get_client(settings.valkey)
        self.stats = BridgeStats()
        self.stop_requested = False
        self.paused = False
        self._assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()
        self._last_check = 0.0
        self._last_reap: float | None = None
        self._last_error: dict[int, float] = {}
        self._consumer: Consumer | None = None

    @property
    def group_id(self) -> str:
        """Consumer group: one per survey, so surveys' offsets never mix."""
        return bridge_group(self.kafka, self.survey)

    def request_stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit, and return."""
        self.stop_requested = True

    def run(self) -> BridgeStats:
        """Run until stopped (or, with ``exit_on_eof``, until the topic's end).

        Raises
        ------
        ConfigError
            If Kafka refuses the survey's login (the batch in hand is not
            committed: Kafka redelivers it to the next run).
        """
        try:
            return self._run()
        except KafkaAuthFailed as e:
            name = self.survey.name
            raise ConfigError(
                f"{e}; check intake.{name}.sasl_username, intake.{name}.sasl_mechanism "
                f"and the password in BOOM_INTAKE__{name}__SASL_PASSWORD"
            ) from None

    def _run(self) -> BridgeStats:
        self._wait_for_kafka()
        if self.stop_requested:
            return self.stats
        conf = consumer_config(self.kafka, self.group_id, error_cb=self._errors, **self._security)
        consumer = Consumer(conf)
        self._consumer = consumer
        self._subscribe(consumer)
        log.info(
            "bridge: consuming %s from %s as group %s",
            self.topic,
            self.kafka.bootstrap_servers,
            self.group_id,
        )
        try:
            self._loop(consumer)
        except TransientError as e:
            if not self.stop_requested:
                raise
            # Asked to stop while Valkey was down: the batch in hand was not queued, its
            # offsets are not committed, and Kafka sends it again to the next bridge.
            log.warning("bridge: stopped before Valkey took the batch in hand (%s); its "
                        "alerts stay uncommitted in Kafka for the next bridge", e)  # fmt: skip
        finally:
            consumer.close()
        return self.stats

    def _loop(self, consumer: Consumer) -> None:
        while not self.stop_requested:
            self._follow_nights(consumer)
            self._consume_some(consumer)
            flushed = self.batcher.due() and self._flush(consumer)
            # Right after a flush the backlog just grew: check it before consuming more.
            self._backpressure(consumer, force=flushed)
            if self.exit_on_eof and self._reached_end():
                log.info("bridge: end of %s reached", self.topic)
                break
        self._flush(consumer)

    def _subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _follow_nights(self, consumer: Consumer) -> None:
        """Add the new night's topic at the boundary; drop the previous one once finished."""
        if self.nights is None:
            return
        night = self.nights.night()
        if night != self.night:
            self.night, self.topic = night, self.nights.topic_of(night)
            self.nights.start_night()
            if self.topic not in self.topics:
                self.topics.append(self.topic)
                log.info("bridge: night %s begins: adding %s to %s", night, self.topic, self.topics)
                self._subscribe(consumer)
            return
        finished = [t for t in self.topics[:-1] if self._topic_done(t)]
        if finished and self.nights.may_drop_previous():
            # Resubscribing revokes the partitions: _on_revoke queues and commits the batch.
            self.topics = [t for t in self.topics if t not in finished]
            log.info("bridge: %s consumed to its end; now only %s", finished, self.topics)
            self._subscribe(consumer)

    def _topic_done(self, topic: str) -> bool:
        """Tell whether every assigned partition of ``topic`` is consumed to its end."""
        parts = {tp for tp in self._assigned if tp[0] == topic}
        return bool(parts) and parts <= self._at_end

    def _wait_for_kafka(self) -> None:
        bridge = self.settings.bridge
        try:
            retry_transient(
                lambda: check_reachable(self.kafka, **self._security),
                what=f"connecting to Kafka at {self.kafka.bootstrap_servers}",
                backoff_s=bridge.retry_backoff_s,
                max_backoff_s=bridge.max_backoff_s,
                should_stop=lambda: self.stop_requested,
            )
        except ServiceUnavailable:
            log.error("bridge: stopped before Kafka became reachable")

    def _consume_some(self, consumer: Consumer) -> None:
        room = self.batcher.max_size - len(self.batcher.batch)
        timeout = min(self.batcher.remaining_wait(), 0.5)
        for msg in consumer.consume(num_messages=max(1, min(room, 500)), timeout=timeout):
            err = msg.error()
            if err is not None:
                self._on_error(msg, err)
                continue
            topic, partition = str(msg.topic()), int(msg.partition() or 0)
            self._at_end.discard((topic, partition))
            # An empty value still goes through, so ingest quarantines it with a reason.
            self.batcher.add(topic, partition, int(msg.offset() or 0), msg.value() or b"")
            self.stats.consumed += 1
        # A login refused mid-run (password rotated) reaches only the error callback.
        self._errors.raise_if_refused()

    def _on_error(self, msg: Message, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            self._at_end.add((str(msg.topic()), int(msg.partition() or 0)))
            return
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and self.exit_on_eof:
            raise TopicMissing(f"topic {self.topic} does not exist on Kafka")
        if err.fatal():
            raise ServiceUnavailable(f"fatal Kafka consumer error: {err.str()}")
        now = time.monotonic()
        if now - self._last_error.get(err.code(), -ERROR_LOG_INTERVAL_S) >= ERROR_LOG_INTERVAL_S:
            self._last_error[err.code()] = now
            log.warning("bridge: Kafka reports %s (librdkafka keeps retrying)", err.str())

    def _reached_end(self) -> bool:
        return bool(self._assigned) and self._assigned <= self._at_end and not self.batcher.batch

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        if self.paused:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand in what we hold before the partitions move to another bridge.
        self._flush(consumer)
        self._assigned -= {(p.topic, p.partition) for p in partitions}

    def _flush(self, consumer: Consumer) -> bool:
        """Queue the batch in hand and commit its offsets; return whether there was one."""
        batch = self.batcher.take()
        if not batch.packets:
            return False
        ref = self._queue(batch)
        self._make_durable(ref)
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
        self.stats.batches += 1
        record_stage(self.valkey, self.survey.name, "received", ref.count, {})
        log.info("bridge: queued %d alerts as %s and committed", ref.count, ref.key)
        return True

    def _make_durable(self, ref: BatchRef) -> None:
        """Wait until Valkey has the batch and its message on disk (``valkey.durable_*``).

        Only then are the offsets committed: Kafka will not send these alerts again,
        so after a power cut they must be in Valkey's AOF. Retried while Valkey is
        down or slow to confirm; the batch and message are not stored again. On a
        stop request the error is raised instead: the offsets stay uncommitted, so
        Kafka sends the batch again to the next bridge (ingest is idempotent).
        """
        bridge = self.settings.bridge
        retry_transient(
            lambda: wait_durable(self.valkey, self.settings.valkey, f"batch {ref.key}"),
            what="waiting for Valkey to make the batch durable",
            backoff_s=bridge.retry_backoff_s,
            max_backoff_s=bridge.max_backoff_s,
            should_stop=lambda: self.stop_requested,
        )

    def _queue(self, batch: Batch) -> BatchRef:
        """Store the batch and send its message, retrying while Valkey is down."""
        bridge = self.settings.bridge
        ref = retry_transient(
            lambda: store_batch(self.valkey, self.survey, batch.packets, bridge.batch_ttl_s),
            what="storing a batch in Valkey",
            backoff_s=bridge.retry_backoff_s,
            max_backoff_s=bridge.max_backoff_s,
            should_stop=lambda: self.stop_requested,
        )
        received_at = batch.received_at or time.time()
        # Before the message: every stage looks the batch's night up by its receipt time.
        record_received(
            self.valkey,
            self.survey.name,
            self.night or tonight(),
            received_at,
            ref.count,
            {tp: (batch.first_offsets.get(tp, n - 1), n) for tp, n in batch.next_offsets.items()},
            self.settings.conductor.keep_days,
        )

        def send() -> None:
            with valkey_errors("sending the ingest message"):
                self.send(ref, received_at)

        retry_transient(
            send,
            what="sending the ingest message",
            backoff_s=bridge.retry_backoff_s,
            max_backoff_s=bridge.max_backoff_s,
            # On a stop the stored batch, named by no message, is reaped as an orphan.
            should_stop=lambda: self.stop_requested,
        )
        return ref

    def _reap_orphans(self) -> None:
        """Delete orphan batches a dead bridge left (``batches.reap_orphans``), now and then."""
        bridge = self.settings.bridge
        now = time.monotonic()
        if self._last_reap is not None and now - self._last_reap < bridge.orphan_after_s / 2:
            return
        self._last_reap = now
        try:
            reap_orphans(
                self.valkey,
                self.survey,
                older_than_s=bridge.orphan_after_s,
                ttl_s=bridge.batch_ttl_s,
                queues=batch_queues(self.survey),
            )
        except TransientError as e:
            log.warning("bridge: cannot look for orphan batches (%s); trying later", e)

    def _backpressure(self, consumer: Consumer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_check < BACKPRESSURE_CHECK_S:
            return
        self._last_check = now
        self._reap_orphans()
        try:
            pending = pending_alerts(self.valkey, self.survey)
        except TransientError as e:
            log.warning("bridge: cannot read the ingestion backlog (%s); keeping state", e)
            return
        limits = self.settings.bridge
        if not self.paused and pending > limits.max_queued_alerts:
            consumer.pause(consumer.assignment())
            self.paused = True
            self.stats.pauses += 1
            log.warning("bridge: %d alerts await ingestion; pausing consumption", pending)
        elif self.paused and pending < limits.resume_queued_alerts:
            consumer.resume(consumer.assignment())
            self.paused = False
            log.info("bridge: %d alerts await ingestion; resuming consumption", pending)

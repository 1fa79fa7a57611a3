"""The bridge's consumer lag: per topic partition, messages in Kafka not yet committed.

Read with the admin API only (committed offsets of the bridge's group, and each
partition's latest offset), so looking never joins the group or moves a bridge's
partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from boom_tasks.services.kafka import admin, kafka_errors
from boom_tasks.settings import KafkaSettings

#: Seconds to wait for Kafka before the dashboard shows the lag as unavailable.
LAG_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a topic the bridge's group has consumed from."""

    topic: str
    partition: int
    committed: int | None
    latest: int

    @property
    def lag(self) -> int:
        """Messages not yet committed by the group (all of them if it never committed)."""
        return self.latest - (self.committed or 0)


def consumer_lag(kafka: KafkaSettings, group_id: str) -> list[PartitionLag]:
    """Return the lag of ``group_id`` on every partition of the topics it has committed on.

    A partition of such a topic with no commit yet counts all its messages as lag.

    Raises
    ------
    ServiceUnavailable
        If Kafka does not answer within :data:`LAG_TIMEOUT_S`.
    """
    client = admin(kafka)
    request = [ConsumerGroupTopicPartitions(group_id)]
    with kafka_errors(f"cannot read consumer lag of {group_id}"):
        group = client.list_consumer_group_offsets(request, request_timeout=LAG_TIMEOUT_S)
        listed = group[group_id].result(timeout=LAG_TIMEOUT_S).topic_partitions or []
        committed = {(p.topic, p.partition): p.offset for p in listed if p.offset >= 0}
        topics = sorted({topic for topic, _ in committed})
        if not topics:
            return []
        metadata = client.list_topics(timeout=LAG_TIMEOUT_S).topics
        wanted = {
            TopicPartition(topic, partition): OffsetSpec.latest()
            for topic in topics
            if topic in metadata
            for partition in metadata[topic].partitions
        }
        futures = client.list_offsets(wanted, request_timeout=LAG_TIMEOUT_S)
        latest = {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
    return [
        PartitionLag(topic, partition, committed.get((topic, partition)), offset)
        for (topic, partition), offset in sorted(latest.items())
    ]

"""Publish an actor's selected alerts and results to its output topic, as JSON.

JSON, not Avro: each actor's result has its own shape, chosen by its author and
versioned by ``version``; a JSON document needs no schema registry and any Kafka
client reads it. Each message is keyed by candid and carries ``survey``,
``actor``, ``version`` and the actor's ``message`` (by default the alert's ids,
position and result), figure links made absolute with ``science.api_url``.

Messages are published before the results are stored: a batch Kafka did not
acknowledge fails and is retried whole (at least once; a consumer may see a
message twice after such a retry, never miss one).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from boom_tasks.errors import ServiceUnavailable
from boom_tasks.science.base import FIGURES_KEY, ScienceActor, default_message

log = logging.getLogger(__name__)

#: Seconds to wait for Kafka to acknowledge one batch's messages.
FLUSH_TIMEOUT_S = 30.0


def message_document(
    survey: str,
    actor: ScienceActor,
    alert: Mapping[str, Any],
    result: Mapping[str, Any],
    api_url: str,
) -> dict[str, Any]:
    """Return the published document of one alert (figure paths as absolute URLs)."""
    linked = dict(result)
    if FIGURES_KEY in linked:
        linked[FIGURES_KEY] = {k: api_url.rstrip("/") + v for k, v in linked[FIGURES_KEY].items()}
    body = (actor.message or default_message)(alert, linked)
    return {"survey": survey, "actor": actor.name, "version": actor.version, **body}


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def publish(
    producer: Producer,
    topic: str,
    documents: Mapping[int, dict[str, Any]],
) -> int:
    """Produce one JSON message per candid and wait for Kafka; return the number delivered.

    Raises
    ------
    ServiceUnavailable
        If Kafka did not acknowledge every message in time.
    """
    delivered: set[int] = set()

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            delivered.add(int(msg.key() or 0))
        else:
            log.error("publishing to %s failed: %s", topic, err)

    for candid, doc in documents.items():
        payload = json.dumps(doc, default=_json_default).encode()
        producer.produce(topic, value=payload, key=str(candid).encode(), on_delivery=on_delivery)
        producer.poll(0)
    producer.flush(FLUSH_TIMEOUT_S)
    if len(delivered) < len(documents):
        raise ServiceUnavailable(
            f"Kafka acknowledged {len(delivered)} of {len(documents)} messages to {topic}"
        )
    return len(delivered)

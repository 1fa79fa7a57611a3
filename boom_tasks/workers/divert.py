"""Divert a poison message: split its batch in halves, or quarantine its single alert.

Splitting is a bisection: each half is a new message with its own delivery count,
so the halves without the culprit go through the chain, and the half holding it is
split again until the culprit stands alone; it is then quarantined in the survey's
quarantine collection with the reason (the raw packet at ingest, the candid at a
later stage). Nothing else of the batch is lost, and nothing is redelivered forever.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.common import q_name

from boom_tasks.batches import complete_batch, load_batch, store_batch
from boom_tasks.ingest.quarantine import Rejected, quarantine
from boom_tasks.services.mongo import get_db, mongo_errors
from boom_tasks.services.valkey import get_client, wait_durable
from boom_tasks.settings import Settings
from boom_tasks.surveys import SURVEYS, Survey

log = logging.getLogger(__name__)


def poison_reason(stage: str, died: int) -> str:
    """Return the quarantine reason of an alert that killed its worker ``died`` times."""
    return f"poison: the worker process died {died} times processing it in {stage}"


def divert(
    broker: dramatiq.Broker, message: dramatiq.Message, settings: Settings, died: int
) -> None:
    """Split ``message``'s batch in two new messages, or quarantine its only alert.

    Parameters
    ----------
    broker
        The broker the halves are sent on.
    message
        A stage message (``<prefix>_<stage>``) that killed its worker ``died`` times.
    settings
        This process's settings.
    died
        How many deliveries of the message ended with the worker's death.
    """
    survey, stage = _survey_stage(message.actor_name)
    args = inspect.signature(broker.get_actor(message.actor_name).fn).bind(
        *message.args, **message.kwargs
    )
    reason = poison_reason(stage, died)
    if stage == "ingest":
        _divert_ingest(broker, message, settings, survey, dict(args.arguments), reason)
    else:
        _divert_candids(broker, message, settings, survey, dict(args.arguments), reason)


def _survey_stage(actor_name: str) -> tuple[Survey, str]:
    prefix, _, stage = actor_name.rpartition("_")
    for survey in SURVEYS.values():
        if survey.queue_prefix == prefix:
            return survey, stage
    raise ValueError(f"{actor_name} is not a stage actor of a registered survey")


def _resend(broker: dramatiq.Broker, message: dramatiq.Message, arguments: dict[str, Any]) -> None:
    """Send a new message (new id, fresh counts) to the same actor with ``arguments``."""
    fresh: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=q_name(message.queue_name),
        actor_name=message.actor_name,
        args=(),
        kwargs=arguments,
        options={},
    )
    broker.enqueue(fresh)


def _divert_candids(
    broker: dramatiq.Broker,
    message: dramatiq.Message,
    settings: Settings,
    survey: Survey,
    arguments: dict[str, Any],
    reason: str,
) -> None:
    candids: Sequence[int] = arguments["candids"]
    if len(candids) > 1:
        middle = len(candids) // 2
        for half in (candids[:middle], candids[middle:]):
            _resend(broker, message, {**arguments, "candids": list(half)})
        wait_durable(get_client(settings.valkey), settings.valkey, "a poison batch's halves")
        log.warning("%s: split a poison batch of %d alerts", message.actor_name, len(candids))
        return
    now = dt.datetime.now(dt.UTC)
    db = get_db(settings.mongo)
    for candid in candids:
        doc = {"survey": survey.name, "candid": candid, "stage": message.actor_name}
        doc |= {"reason": reason, "message_id": message.message_id, "quarantined_at": now}
        with mongo_errors(f"quarantining a poison {survey.name} alert"):
            db[survey.quarantine].update_one(
                {"_id": f"poison:{message.actor_name}:{candid}"},
                {"$setOnInsert": doc},
                upsert=True,
            )
        log.error("%s: quarantined alert %s: %s", message.actor_name, candid, reason)


def _divert_ingest(
    broker: dramatiq.Broker,
    message: dramatiq.Message,
    settings: Settings,
    survey: Survey,
    arguments: dict[str, Any],
    reason: str,
) -> None:
    client = get_client(settings.valkey)
    key = arguments["batch_key"]
    packets = load_batch(client, key)
    if packets is None:  # already ingested by an earlier delivery
        return
    if len(packets) > 1:
        middle = len(packets) // 2
        for half in (packets[:middle], packets[middle:]):
            ref = store_batch(client, survey, half, settings.bridge.batch_ttl_s)
            _resend(broker, message, {**arguments, "batch_key": ref.key, "count": ref.count})
        # The halves are durable before the whole is dropped: a crash in between
        # splits it again (ingest is idempotent), it never loses it.
        wait_durable(client, settings.valkey, "a poison batch's halves")
        log.warning(
            "%s: split poison batch %s of %d packets", message.actor_name, key, len(packets)
        )
    else:
        now = dt.datetime.now(dt.UTC)
        quarantine(get_db(settings.mongo), survey, [Rejected(packets[0], reason)], key, now)
        log.error("%s: quarantined the packet of batch %s: %s", message.actor_name, key, reason)
    complete_batch(client, survey, key)

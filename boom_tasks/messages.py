"""The messages between stages: a list of candids and the per-stage timestamps.

Every stage after ingest receives ``(candids, times, version)``. ``times`` maps a
stage name (``received`` by the bridge, ``ingested``, ``crossmatched``, ...) to the
Unix time it finished with the batch, so the output can report each alert's
latency per stage without another database read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import dramatiq

from boom_tasks.conductor.counters import record_stage_night
from boom_tasks.errors import PermanentError
from boom_tasks.monitor.stats import record_stage
from boom_tasks.services.valkey import get_client, wait_durable
from boom_tasks.settings import Settings

#: Version of the inter-stage messages; bump it when their arguments change meaning.
MESSAGE_VERSION = 1


def check_version(actor: str, version: int) -> None:
    """Refuse a message of another version (it goes to the dead-letter queue)."""
    if version != MESSAGE_VERSION:
        raise PermanentError(f"{actor}: unsupported message version {version}")


def stamp(times: dict[str, float], stage: str, now: float | None = None) -> dict[str, float]:
    """Return ``times`` with ``stage`` finished at ``now`` (default: the current time)."""
    return {**times, stage: time.time() if now is None else now}


def hand_on(
    settings: Settings,
    survey: str,
    stage: str,
    candids: Sequence[int],
    times: dict[str, float],
    next_stage: dramatiq.Actor | None,
    count: int | None = None,
    by_filter: Mapping[str, int] | None = None,
    stamped: bool = True,
) -> None:
    """Stamp ``stage`` finished, send ``candids`` (if any) to ``next_stage``, count the stage.

    ``count`` is the number of alerts the stage handled (default: ``len(candids)``);
    it differs when a stage forwards only some, as the filter stage does. The batch
    is also counted on its night (:mod:`boom_tasks.conductor.counters`), with
    ``by_filter``'s per-filter counts (new passes, deliveries). When a
    message was sent, this returns only once Valkey has made it durable
    (``valkey.durable_*``): the stage's own message is acknowledged after this
    function returns, so a power cut in between loses no hand-off.

    A stage that is not ``stamped`` (science: the results' Avro schemas carry a fixed
    set of stage times, and only some surveys have it) sends the times unchanged and
    is counted on the dashboard only, not in the night report, which adds up the
    stamped stages; its time counts in the next stamped stage's latency.

    Raises
    ------
    NotDurable
        If Valkey did not confirm the message durable in time: the stage fails and
        its message is redelivered (a duplicate next message is harmless: every
        stage is idempotent).
    """
    now = time.time()
    if stamped:
        times = stamp(times, stage, now)
    sent = False
    if next_stage is not None and candids:
        next_stage.send(list(candids), times)
        sent = True
    handled = len(candids) if count is None else count
    client = get_client(settings.valkey)
    record_stage(client, survey, stage, handled, times, now)
    if stamped:
        keep = settings.conductor.keep_days
        record_stage_night(
            client, survey, stage, handled, len(candids), times, now, by_filter, keep
        )
    if sent:
        wait_durable(client, settings.valkey, f"the {survey} {stage} hand-off")

"""Replays through the chain's stages: reprocess a stored night, re-ingest one.

Both run, inside one low-priority replay message, the same stage functions the
live actors call, in the chain's order, on one slice of alerts:

* ``reprocess``: crossmatch every object of the slice again (``only_new=False``:
  a catalog loaded since), recompute properties and classifications
  (``redo=True``: a new model), run the active filters, and publish the passes
  not published yet to the results topic, marked as the replay;
* ``reingest``: ingest a batch of packets (from the archive or a Kafka topic,
  stored in Valkey by the runner), then crossmatch new objects, enrich, filter
  and publish as the live chain does, marked as the replay.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Producer
from pymongo.database import Database

from boom_tasks.batches import complete_batch, load_batch
from boom_tasks.crossmatch.actor import current_plans
from boom_tasks.crossmatch.stage import (
    crossmatch_batch,
    crossmatch_objects,
    object_positions,
    plan_catalogs,
)
from boom_tasks.filter.run import run_filters
from boom_tasks.filter.store import load_active
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.ml.actor import survey_models
from boom_tasks.ml.stage import enrich_batch
from boom_tasks.output.publish import publish_batch
from boom_tasks.services.mongo import get_catalog_db
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import Settings
from boom_tasks.surveys import Survey


def batch_owner(survey: Survey) -> Survey:
    """Return the survey under whose name a replay's packet batches are kept in Valkey.

    Its own pending counter (``boom:<survey>_replay:pending``): the bridge's
    backpressure and the replay's wait for a quiet live night both read the live
    counter, which a replay's batches must not fill.
    """
    return dataclasses.replace(survey, name=f"{survey.name}_replay")


def _filter_and_publish(
    db: Database,
    survey: Survey,
    settings: Settings,
    candids: Sequence[int],
    producer: Producer,
    stack: Mapping[str, Any],
    run_id: str,
) -> dict[str, int]:
    outcomes, _ = run_filters(db, survey, load_active(db, survey.name), candids, settings.filters)
    published = publish_batch(
        db, survey, producer, candids, {}, settings.output, dict(stack), run=run_id
    )
    return {"passed": sum(len(o.passes) for o in outcomes), "published": published}


def reprocess(
    db: Database,
    survey: Survey,
    settings: Settings,
    candids: Sequence[int],
    producer: Producer,
    stack: Mapping[str, Any],
    run_id: str,
) -> dict[str, int]:
    """Crossmatch, enrich, filter and publish stored alerts again; return the counts."""
    now = dt.datetime.now(dt.UTC)
    positions = object_positions(db, survey, candids)
    # Planned afresh, not from the live actor's cache: the catalog was maybe loaded a minute ago.
    specs = settings.crossmatch.get(survey.name, [])
    plans, _problems = plan_catalogs(get_catalog_db(settings.mongo), specs)
    matched = crossmatch_objects(db, survey, plans, positions, now, only_new=False)
    enriched = enrich_batch(db, survey, survey_models(survey, settings), candids, now, redo=True)
    counts = _filter_and_publish(db, survey, settings, candids, producer, stack, run_id)
    return {"crossmatched": matched, "enriched": enriched.alerts, **counts}


def reingest(
    db: Database,
    survey: Survey,
    settings: Settings,
    batch_key: str,
    producer: Producer,
    stack: Mapping[str, Any],
    run_id: str,
) -> dict[str, int]:
    """Ingest a stored batch of packets and take its alerts through the chain.

    Returns
    -------
    dict
        The counts: ingested, quarantined, passed, published. A batch already
        done (a redelivered message) counts nothing.

    Raises
    ------
    BatchVanished
        If the batch is neither stored nor marked done (its TTL expired).
    """
    valkey = get_client(settings.valkey)
    packets = load_batch(valkey, batch_key)
    if packets is None:
        return {}
    result = ingest_packets(db, survey, packets, batch_key)
    candids = result.candids
    crossmatch_batch(db, survey, current_plans(survey, settings), candids)
    enrich_batch(db, survey, survey_models(survey, settings), candids)
    counts = _filter_and_publish(db, survey, settings, candids, producer, stack, run_id)
    complete_batch(valkey, batch_owner(survey), batch_key)
    return {"ingested": len(result.added), "quarantined": len(result.rejected), **counts}

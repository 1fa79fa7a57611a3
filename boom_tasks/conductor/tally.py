"""The pure arithmetic of a night report: totals, where batches stopped, latencies.

Works on the parsed per-night records (:class:`~boom_tasks.conductor.counters.StageNight`)
only, so it is tested without any server. A batch is followed stage by stage by
its receipt key: each stage should have handled what the previous one sent on.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from boom_tasks.conductor.counters import STAGES, StageNight
from boom_tasks.monitor.stats import percentile

#: The queues (``<survey>_<queue>``) that may hold a batch owed to each stamp: the
#: stamping stage's own, after the hops that stamp nothing (science, which only some
#: surveys have, sits between ML and the filters).
QUEUE_OF = {
    "ingested": ("ingest",),
    "crossmatched": ("crossmatch",),
    "enriched": ("ml",),
    "filtered": ("science", "filter"),
    "published": ("output",),
}
#: Latency percentiles reported per stage.
PERCENTILES = (50.0, 90.0, 99.0)


@dataclass
class Gap:
    """Alerts of one batch that a stage has not (fully) handled.

    Attributes
    ----------
    receipt
        The batch's receipt key.
    stage
        The stage that should have handled them next (a key of :data:`QUEUE_OF`).
    expected, handled
        Alerts sent to that stage, and alerts it handled (0: never ran the batch).
    """

    receipt: str
    stage: str
    expected: int
    handled: int

    @property
    def missing(self) -> int:
        """Alerts the stage still owes."""
        return self.expected - self.handled


@dataclass
class Totals:
    """A night's counts, stage by stage (see ``docs/night-report.md``)."""

    kafka: int = 0
    queued: int = 0
    ingested: int = 0
    quarantined: int = 0
    duplicates: int = 0
    crossmatched: int = 0
    enriched: int = 0
    filtered: int = 0
    passed: int = 0
    published: int = 0
    passes: dict[str, int] = field(default_factory=dict)
    published_by_filter: dict[str, int] = field(default_factory=dict)


def totals(night: Mapping[str, StageNight]) -> Totals:
    """Add up a night's records into :class:`Totals`."""
    rec, ing = night["received"], night["ingested"]
    stored = sum(ing.sent.values())
    quarantined = sum(ing.quarantined.values())
    return Totals(
        kafka=sum(nxt - first for first, nxt in rec.offsets.values()),
        queued=sum(rec.handled.values()),
        ingested=stored,
        quarantined=quarantined,
        duplicates=sum(ing.handled.values()) - stored - quarantined,
        crossmatched=sum(night["crossmatched"].handled.values()),
        enriched=sum(night["enriched"].handled.values()),
        filtered=sum(night["filtered"].handled.values()),
        passed=sum(night["filtered"].sent.values()),
        published=sum(night["published"].handled.values()),
        passes=dict(night["filtered"].by_filter),
        published_by_filter=dict(night["published"].by_filter),
    )


def gaps(night: Mapping[str, StageNight]) -> list[Gap]:
    """Return, per batch, the first stage that has not handled what it was sent."""
    found = []
    for receipt, queued in sorted(night["received"].handled.items()):
        expected = queued
        for stage in STAGES[1:]:
            record = night[stage]
            handled = record.handled.get(receipt, 0)
            if handled != expected:
                found.append(Gap(receipt, stage, expected, handled))
                break
            expected = record.sent.get(receipt, 0)
            if expected == 0:
                break
    return found


def problems(t: Totals, found: list[Gap]) -> list[str]:
    """Return every equation of the report that does not hold, in words."""
    out = []
    if t.kafka != t.queued:
        out.append(f"Kafka offsets span {t.kafka} alerts but the bridge queued {t.queued}")
    accounted = t.ingested + t.quarantined + t.duplicates
    if accounted != t.queued:
        out.append(f"queued {t.queued} != ingested + quarantined + duplicates {accounted}")
    chain = [
        ("ingested", t.ingested),
        ("crossmatched", t.crossmatched),
        ("enriched", t.enriched),
        ("filtered", t.filtered),
    ]
    for (a, na), (b, nb) in itertools.pairwise(chain):
        if na != nb:
            out.append(f"{a} {na} != {b} {nb}")
    if t.passed != t.published:
        out.append(f"alerts passing a filter {t.passed} != alerts published {t.published}")
    for fid in sorted(set(t.passes) | set(t.published_by_filter)):
        p, q = t.passes.get(fid, 0), t.published_by_filter.get(fid, 0)
        if p != q:
            out.append(f"filter {fid}: {p} new passes != {q} published")
    stuck = sum(g.missing for g in found)
    if stuck and not out:
        out.append(f"{stuck} alerts stopped on their way (see the stopped batches)")
    return out


def latencies(night: Mapping[str, StageNight]) -> dict[str, dict[str, float | None]]:
    """Return each stage's latency percentiles since receipt, in seconds."""
    return {
        stage: {f"p{q:g}": percentile(night[stage].buckets, q) for q in PERCENTILES}
        for stage in STAGES[1:]
        if night[stage].buckets
    }


def peak_rate(record: StageNight) -> tuple[float, int | None]:
    """Return a stage's busiest minute of the night: (alerts/s, minute start), or (0, None)."""
    if not record.per_minute:
        return 0.0, None
    minute, count = max(record.per_minute.items(), key=lambda kv: kv[1])
    return count / 60.0, minute * 60

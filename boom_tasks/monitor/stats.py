"""Per-stage alert counts, latency histograms and filter passes, kept in Valkey.

Every stage, after finishing a batch, adds the batch's size and its latency since
the bridge received it (from the message's ``times``) to two hashes: one for the
current minute (kept :data:`MINUTE_TTL_S`) and one running total (for Prometheus
counters). Latencies go into fixed log-spaced buckets, a quarter octave wide, so
percentiles are exact to within one bucket (19 %) whatever the number of workers,
and recording costs one round trip per batch. Filter passes are counted per hour.

Recording never fails a stage: a Valkey error is logged and the batch goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import redis

from boom_tasks.services.valkey import best_effort

#: Key prefix of every figure recorded here.
PREFIX = "boom:stats"
#: The stages in pipeline order; each is a key of the messages' ``times``.
STAGES = ("received", "ingested", "crossmatched", "enriched", "filtered", "published")
#: Smallest latency bucket's upper edge, in seconds.
BUCKET_BASE_S = 0.01
#: Buckets per doubling of latency.
BUCKETS_PER_OCTAVE = 4
#: Index of the last bucket (0.01 s x 2**24, about 46 hours: anything later lands there).
LAST_BUCKET = 24 * BUCKETS_PER_OCTAVE
#: Seconds a per-minute hash lives: the dashboard looks back at most an hour.
MINUTE_TTL_S = 2 * 3600
#: Seconds a per-hour pass count lives.
HOUR_TTL_S = 8 * 24 * 3600


def bucket_of(latency_s: float) -> int:
    """Return the index of the bucket holding ``latency_s``."""
    if latency_s <= BUCKET_BASE_S:
        return 0
    index = math.ceil(BUCKETS_PER_OCTAVE * math.log2(latency_s / BUCKET_BASE_S) - 1e-9)
    return min(index, LAST_BUCKET)


def bucket_edge(index: int) -> float:
    """Return the upper edge, in seconds, of bucket ``index``."""
    return BUCKET_BASE_S * 2.0 ** (index / BUCKETS_PER_OCTAVE)


def _stage_key(survey: str, stage: str, suffix: str) -> str:
    return f"{PREFIX}:{survey}:{stage}:{suffix}"


def _passes_key(survey: str, suffix: str) -> str:
    return f"{PREFIX}:{survey}:passes:{suffix}"


def record_stage(
    valkey: redis.Redis,
    survey: str,
    stage: str,
    count: int,
    times: Mapping[str, float],
    now: float | None = None,
) -> None:
    """Count ``count`` alerts finishing ``stage`` now, ``now - times['received']`` after receipt.

    ``times`` without ``received`` (the bridge itself) records the count only.
    """
    if count <= 0:
        return
    now = time.time() if now is None else now
    received = times.get("received")
    fields = {"n": count}
    latency = None if received is None else max(0.0, now - received)
    if latency is not None:
        fields[f"b{bucket_of(latency)}"] = count
    minute_key = _stage_key(survey, stage, f"m:{int(now // 60)}")
    with best_effort(f"record {survey} {stage} stats"):
        pipe = valkey.pipeline(transaction=False)
        for key in (minute_key, _stage_key(survey, stage, "total")):
            for name, value in fields.items():
                pipe.hincrby(key, name, value)
            if latency is not None:
                pipe.hincrbyfloat(key, "sum", latency * count)
        pipe.expire(minute_key, MINUTE_TTL_S)
        pipe.execute()


def record_passes(
    valkey: redis.Redis, survey: str, by_filter: Mapping[str, int], now: float | None = None
) -> None:
    """Count new filter passes (by filter id) in the current hour and the running total."""
    counts = {name: n for name, n in by_filter.items() if n > 0}
    if not counts:
        return
    now = time.time() if now is None else now
    hour_key = _passes_key(survey, f"h:{int(now // 3600)}")
    with best_effort(f"record {survey} filter pass stats"):
        pipe = valkey.pipeline(transaction=False)
        for name, n in counts.items():
            pipe.hincrby(hour_key, name, n)
            pipe.hincrby(_passes_key(survey, "total"), name, n)
        pipe.expire(hour_key, HOUR_TTL_S)
        pipe.execute()


@dataclass(frozen=True)
class StageFigures:
    """One stage over a window of minutes: counts per minute and latency buckets.

    Attributes
    ----------
    per_minute
        Alerts per minute, oldest first, the current (partial) minute last.
    buckets
        Alerts per latency bucket index over the window.
    """

    stage: str
    per_minute: list[int]
    buckets: dict[int, int]

    def rate(self, minutes: int | None = None) -> float:
        """Return alerts/s over the last ``minutes`` whole minutes (default: the window).

        The current minute is left out: it is not over, and would bias the rate down.
        """
        whole = self.per_minute[:-1]
        if minutes is not None:
            whole = whole[-minutes:]
        return sum(whole) / (60.0 * len(whole)) if whole else 0.0

    def percentile(self, q: float) -> float | None:
        """Return the latency (s) under which ``q`` percent of alerts finished, or None."""
        return percentile(self.buckets, q)


def percentile(buckets: Mapping[int, int], q: float) -> float | None:
    """Return the upper edge of the bucket holding the ``q``-th percentile, or None if empty."""
    total = sum(buckets.values())
    if total == 0:
        return None
    target = total * q / 100.0
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= target:
            return bucket_edge(index)
    return bucket_edge(max(buckets))


def _parse_hash(raw: Mapping[bytes, bytes]) -> tuple[int, dict[int, int]]:
    count, buckets = 0, {}
    for name, value in raw.items():
        if name == b"n":
            count = int(value)
        elif name.startswith(b"b"):
            buckets[int(name[1:])] = int(value)
    return count, buckets


def stage_figures(
    valkey: redis.Redis,
    survey: str,
    minutes: int,
    stages: Iterable[str] = STAGES,
    now: float | None = None,
) -> list[StageFigures]:
    """Return each stage's counts per minute and latency buckets over the last ``minutes``."""
    now = time.time() if now is None else now
    current = int(now // 60)
    span = range(current - minutes, current + 1)
    stages = list(stages)
    pipe = valkey.pipeline(transaction=False)
    for stage in stages:
        for minute in span:
            pipe.hgetall(_stage_key(survey, stage, f"m:{minute}"))
    replies = iter(pipe.execute())
    figures = []
    for stage in stages:
        per_minute: list[int] = []
        buckets: dict[int, int] = {}
        for _ in span:
            count, minute_buckets = _parse_hash(next(replies))
            per_minute.append(count)
            for index, n in minute_buckets.items():
                buckets[index] = buckets.get(index, 0) + n
        figures.append(StageFigures(stage, per_minute, buckets))
    return figures


@dataclass(frozen=True)
class StageTotals:
    """A stage's running totals since the counters began (for Prometheus)."""

    stage: str
    count: int
    buckets: dict[int, int]
    latency_sum: float


def stage_totals(
    valkey: redis.Redis, survey: str, stages: Iterable[str] = STAGES
) -> list[StageTotals]:
    """Return each stage's running totals."""
    stages = list(stages)
    pipe = valkey.pipeline(transaction=False)
    for stage in stages:
        pipe.hgetall(_stage_key(survey, stage, "total"))
    totals = []
    for stage, raw in zip(stages, pipe.execute(), strict=True):
        count, buckets = _parse_hash(raw)
        totals.append(StageTotals(stage, count, buckets, float(raw.get(b"sum", 0.0))))
    return totals


def passes_per_hour(
    valkey: redis.Redis, survey: str, hours: int, now: float | None = None
) -> list[tuple[int, dict[str, int]]]:
    """Return ``(hour start, {filter id: passes})`` for the last ``hours``, oldest first."""
    now = time.time() if now is None else now
    current = int(now // 3600)
    span = range(current - hours + 1, current + 1)
    pipe = valkey.pipeline(transaction=False)
    for hour in span:
        pipe.hgetall(_passes_key(survey, f"h:{hour}"))
    return [
        (hour * 3600, {k.decode(): int(v) for k, v in raw.items()})
        for hour, raw in zip(span, pipe.execute(), strict=True)
    ]


def passes_total(valkey: redis.Redis, survey: str) -> dict[str, int]:
    """Return the running total of passes per filter id."""
    raw = cast(dict[bytes, bytes], valkey.hgetall(_passes_key(survey, "total")))
    return {k.decode(): int(v) for k, v in raw.items()}

"""The dashboard's figures for Prometheus, read from the same sources at each scrape.

Workers are separate processes, so nothing is kept in this process's registry:
a collector reads Valkey, MongoDB and Kafka when Prometheus scrapes ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from boom_tasks.dashboard.overview import Overview
from boom_tasks.dashboard.replays import replay_metrics
from boom_tasks.monitor.costs import FIELDS
from boom_tasks.monitor.stats import BUCKETS_PER_OCTAVE, LAST_BUCKET, StageTotals, bucket_edge

#: Histogram bucket edges exposed: one per doubling (0.01 s, 0.02 s, ... ~46 h).
EXPOSED_BUCKETS = range(0, LAST_BUCKET + 1, BUCKETS_PER_OCTAVE)


def _histogram_buckets(t: StageTotals) -> list[tuple[str, float]]:
    out, seen = [], 0
    for edge_index in EXPOSED_BUCKETS:
        seen = sum(n for i, n in t.buckets.items() if i <= edge_index)
        out.append((f"{bucket_edge(edge_index):.6g}", float(seen)))
    out.append(("+Inf", float(sum(t.buckets.values()))))
    return out


def queue_metrics(overview: Overview) -> Iterator[Metric]:
    """Yield the queue gauges and the live workers."""
    if overview.queues.value is not None:
        g = GaugeMetricFamily(
            "boom_queue_messages",
            "Messages on a Dramatiq queue, by state",
            labels=["queue", "state"],
        )
        for c in overview.queues.value:
            for state in ("ready", "in_flight", "delayed", "dead"):
                g.add_metric([c.queue, state], getattr(c, state))
        yield g
    if overview.workers.value is not None:
        yield GaugeMetricFamily(
            "boom_worker_threads",
            "Dramatiq worker threads with a recent heartbeat",
            value=overview.workers.value,
        )


def survey_metrics(overview: Overview, totals: dict[str, list[StageTotals]]) -> Iterator[Metric]:
    """Yield per-survey stage counters, latency histograms, lag and quarantine gauges."""
    alerts = CounterMetricFamily(
        "boom_stage_alerts", "Alerts a stage has finished", labels=["survey", "stage"]
    )
    latency = HistogramMetricFamily(
        "boom_stage_latency_seconds",
        "Seconds from bridge receipt to the end of a stage",
        labels=["survey", "stage"],
    )
    lag = GaugeMetricFamily(
        "boom_bridge_consumer_lag",
        "Messages in Kafka not yet committed by the bridge, per lagging partition",
        labels=["survey", "topic", "partition"],
    )
    lag_total = GaugeMetricFamily(
        "boom_bridge_consumer_lag_total",
        "Messages in Kafka not yet committed by the bridge, all partitions",
        labels=["survey"],
    )
    quarantined = GaugeMetricFamily(
        "boom_quarantined_packets", "Packets in quarantine", labels=["survey"]
    )
    for s in overview.surveys:
        for t in totals.get(s.survey, []):
            alerts.add_metric([s.survey, t.stage], t.count)
            if t.buckets:
                latency.add_metric(
                    [s.survey, t.stage], _histogram_buckets(t), sum_value=t.latency_sum
                )
        if s.lag.value is not None:
            # Only lagging partitions: the group keeps one finished topic per night.
            for p in (p for p in s.lag.value if p.lag > 0):
                lag.add_metric([s.survey, p.topic, str(p.partition)], p.lag)
            lag_total.add_metric([s.survey], sum(p.lag for p in s.lag.value))
        if s.quarantine.value is not None:
            quarantined.add_metric([s.survey], s.quarantine.value[0])
    yield from (alerts, latency, lag, lag_total, quarantined)


def pass_metrics(passes: dict[str, dict[str, int]], names: dict[str, str]) -> Iterator[Metric]:
    """Yield the filter pass counters (``passes``: survey → filter id → total)."""
    c = CounterMetricFamily(
        "boom_filter_passes", "Alerts a filter has passed", labels=["survey", "filter_id", "filter"]
    )
    for survey, by_filter in passes.items():
        for fid, n in by_filter.items():
            c.add_metric([survey, fid, names.get(fid, "?")], n)
    yield c


def cost_metrics(costs: dict[str, dict[str, dict[str, float]]]) -> Iterator[Metric]:
    """Yield the workers' cost counters (``costs``: survey → stage → field → total).

    A series appears once its stage has recorded a message; the database ones only
    from workers running with ``mongo.command_monitoring`` on.
    """
    for field, suffix, text in FIELDS:
        c = CounterMetricFamily(f"boom_stage_{suffix}", text, labels=["survey", "stage"])
        for survey, stages in costs.items():
            for stage, totals in stages.items():
                if field in totals:
                    c.add_metric([survey, stage], totals[field])
        yield c


#: What a scrape reads: the overview, then by survey the stage totals, the pass
#: totals and the workers' costs per stage.
Figures = tuple[
    Overview,
    dict[str, list[StageTotals]],
    dict[str, dict[str, int]],
    dict[str, dict[str, dict[str, float]]],
]


class FiguresCollector(Collector):
    """A Prometheus collector over a callable returning the current figures."""

    def __init__(self, read: Callable[[], Figures]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """Read the figures now and yield them as metric families."""
        overview, totals, passes, costs = self._read()
        yield from queue_metrics(overview)
        yield from survey_metrics(overview, totals)
        yield from pass_metrics(passes, overview.filter_names)
        yield from cost_metrics(costs)
        yield from replay_metrics(overview.replay_states.value)

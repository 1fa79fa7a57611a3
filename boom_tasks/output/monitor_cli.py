"""``boom-monitor TOPIC [--interval S] [--group G]``.

Watch an output topic and print, every interval, how many alerts arrived and
how fast, per filter and in total, and the broker's latency percentiles
(``times.published - times.received``, survey packet in to message out).
The alert_stream demo's ``monitorStream`` prints each raw message; counting
is what an operator watching a night needs.

The monitor starts at the end of the topic: it watches what is published now.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from confluent_kafka import Message

from boom_tasks.entry import EXIT_OK, exit_with, kafka_topic
from boom_tasks.output.print_cli import consume, decode_or_report, open_consumer

#: Seconds between two reports by default.
DEFAULT_INTERVAL_S = 10.0
#: Latency percentiles reported: median, and the tail an operator acts on.
PERCENTILES = (50, 95, 99)


def percentiles(values: Sequence[float], qs: Iterable[int] = PERCENTILES) -> dict[int, float]:
    """Return the ``qs`` percentiles of ``values`` (linear interpolation), {} when empty."""
    if not values:
        return {}
    found = np.percentile(np.asarray(values, dtype=np.float64), list(qs))
    return {q: float(v) for q, v in zip(qs, found, strict=True)}


def latency(message: dict[str, Any]) -> float | None:
    """Return ``published - received`` in seconds, or None if either is missing."""
    times = message.get("times") or {}
    received, published = times.get("received"), times.get("published")
    if received is None or published is None:
        return None
    return float(published) - float(received)


@dataclass
class StreamStats:
    """Counts and latencies of one topic, per interval and since the start.

    Attributes
    ----------
    started
        When monitoring began (``time.monotonic()`` seconds).
    interval_start
        When the current interval began.
    """

    started: float
    interval_start: float = 0.0
    alerts: int = 0
    total_alerts: int = 0
    by_filter: Counter[str] = field(default_factory=Counter)
    total_by_filter: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.interval_start = self.interval_start or self.started

    def add(self, message: dict[str, Any]) -> None:
        """Count one alert: once in the total, once for every filter it passed."""
        self.alerts += 1
        self.total_alerts += 1
        for passed in message.get("filters") or []:
            fid = str(passed["filter_id"])
            self.names[fid] = str(passed.get("name") or fid)
            self.by_filter[fid] += 1
            self.total_by_filter[fid] += 1
        lag = latency(message)
        if lag is not None:
            self.latencies.append(lag)

    def due(self, now: float, interval: float) -> bool:
        """Return whether ``interval`` seconds have passed since the interval began."""
        return now - self.interval_start >= interval

    def report(self, now: float) -> str:
        """Return the current interval's summary and start a new interval."""
        text = format_report(self, now)
        self.interval_start = now
        self.alerts = 0
        self.by_filter.clear()
        self.latencies.clear()
        return text


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def format_report(stats: StreamStats, now: float) -> str:
    """Return the lines of one report: totals, latency percentiles, one line per filter."""
    span, whole = now - stats.interval_start, now - stats.started
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"[{stamp}] last {span:.1f} s: {stats.alerts} alerts ({_rate(stats.alerts, span):.2f}/s); "
        f"total {stats.total_alerts} ({_rate(stats.total_alerts, whole):.2f}/s)"
    ]
    found = percentiles(stats.latencies)
    if found:
        parts = "  ".join(f"p{q} {v:.2f} s" for q, v in found.items())
        lines.append(f"  latency published - received: {parts}  (n={len(stats.latencies)})")
    for fid, total in sorted(stats.total_by_filter.items(), key=lambda kv: (-kv[1], kv[0])):
        count = stats.by_filter.get(fid, 0)
        label = f"{stats.names[fid]} ({fid})"
        lines.append(f"  {label:<40} {count:>7} {_rate(count, span):>8.2f}/s   total {total:>9}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-monitor", description="Watch rates and latency of a topic."
    )
    p.add_argument("topic", type=kafka_topic, help="output topic, e.g. ZTF_alerts_results")
    p.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help=f"seconds between reports (default {DEFAULT_INTERVAL_S:g})",
    )
    p.add_argument("--group", help="consumer group: share the topic and remember the position")
    return p


def run(argv: list[str] | None = None) -> int:
    """Run ``boom-monitor`` until interrupted; return the exit code."""
    args = _parser().parse_args(argv)
    if args.interval <= 0:
        raise SystemExit("boom-monitor: --interval must be positive")
    consumer = open_consumer(args.topic, args.group, "boom-monitor", from_beginning=False)
    stats = StreamStats(started=time.monotonic())

    def handle(msg: Message) -> None:
        message = decode_or_report(msg)
        if message is not None:
            stats.add(message)
        if args.group:
            consumer.commit(message=msg, asynchronous=True)

    def tick() -> None:
        now = time.monotonic()
        if stats.due(now, args.interval):
            print(stats.report(now), flush=True)

    try:
        consume(consumer, handle, tick=tick)
    except KeyboardInterrupt:
        print(stats.report(time.monotonic()), flush=True)
    finally:
        consumer.close()
    return EXIT_OK


def main() -> None:
    """Entry point of ``boom-monitor``."""
    exit_with("boom-monitor", run)

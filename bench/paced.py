"""Paced mode of the pipeline benchmark: a steady stream of visits, latency over time.

Alerts arrive as a survey sends them: in bursts of one visit (``--visit`` alerts) at
a fixed interval, at a chosen fraction of the broker's sustainable rate. The
sustainable rate is the highest at which no queue grows over the run; the bench
takes the rate at which the same broker drained the whole set at once (it cannot go
faster) and checks, at each fraction, that the queues did not grow. For each run it
reports p50/p95/p99 latency from bridge receipt to publication, and draws throughput,
latency and queue depth over time in one PNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display: the bench writes a file
import matplotlib.pyplot as plt
import numpy as np

from boom_tasks.replay.producer import produce_packets

if TYPE_CHECKING:
    from bench.runs import Run
    from boom_tasks.settings import Settings

#: Seconds per bin of the throughput curve.
BIN_S = 5.0


def feeder(
    settings: Settings, topic: str, packets: Sequence[bytes], rate: float, visit: int
) -> Callable[[], None]:
    """Return a function producing ``packets`` to ``topic`` in visits at ``rate`` alerts/s."""

    def feed() -> None:
        produce_packets(
            settings,
            topic,
            iter(packets),
            progress=False,
            burst_size=visit,
            burst_interval_s=visit / rate,
        )

    return feed


def latencies(run: Run) -> np.ndarray:
    """Return every published alert's latency (published - received), in seconds."""
    return np.array([t["published"] - t["received"] for t in run.times])


def queues_grew(depth: Sequence[tuple[float, int]], feeding_s: float) -> bool:
    """Return True if the queues were deeper at the end of the feeding than early in it.

    Bursts make the depth saw-toothed, so the mean of the last quarter of the feeding
    is compared with the mean of its second quarter (after the pipeline filled).
    """
    early = [d for t, d in depth if feeding_s / 4 <= t < feeding_s / 2]
    late = [d for t, d in depth if 3 * feeding_s / 4 <= t <= feeding_s]
    if not early or not late:
        return False
    return float(np.mean(late)) > 2 * float(np.mean(early)) + 2


def summary(name: str, run: Run, rate: float, feeding_s: float) -> str:
    """Return one line: offered rate, achieved rate, latency percentiles, queue verdict."""
    lat = latencies(run)
    if not len(lat):
        return f"  {name}: nothing published"
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    grew = "queues GREW" if queues_grew(run.depth, feeding_s) else "queues did not grow"
    return (
        f"  {name:<22} offered {rate:6.1f} alerts/s, achieved {run.rate:6.1f}; latency "
        f"p50 {p50:.2f}s p95 {p95:.2f}s p99 {p99:.2f}s ({len(lat)} published); {grew}"
    )


def draw(runs: dict[str, Run], path: Path) -> None:
    """Draw throughput, latency and queue depth over time for each paced run."""
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for name, run in runs.items():
        if not run.times:
            continue
        t0 = min(t["received"] for t in run.times)
        published = np.array([t["published"] - t0 for t in run.times])
        edges = np.arange(0, published.max() + BIN_S, BIN_S)
        counts, _ = np.histogram(published, edges)
        axes[0].step(edges[:-1], counts / BIN_S, where="post", label=name)
        axes[1].plot(published, latencies(run), ".", ms=2, label=name)
        if run.depth:
            t, d = zip(*run.depth, strict=True)
            axes[2].plot(t, d, label=name)
    axes[0].set_ylabel(f"published alerts/s ({BIN_S:.0f} s bins)")
    axes[1].set_ylabel("latency received → published (s)")
    axes[2].set_ylabel("messages waiting")
    axes[2].set_xlabel("seconds since the first alert was received")
    for ax in axes:
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    fig.suptitle("boom-tasks paced benchmark: visits at a fraction of the sustainable rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

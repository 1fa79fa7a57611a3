"""Picture benchmark: time to draw one alert's picture, full size and thumbnail.

Step 1: build the published message of ``--alerts`` real ZTF alerts of one night
        (``../shared/data/ztf/fink-20181129``), with their packet history;
Step 2: draw each picture at full size and as a thumbnail (one warm-up first),
        reporting median and maximum time and the median PNG size.
Run: ``.venv/bin/python bench/pictures.py --alerts 30`` (no server needed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from boom_tasks.output.message import build_message  # noqa: E402
from boom_tasks.pictures import from_message, render_png  # noqa: E402
from boom_tasks.surveys import ZTF  # noqa: E402

NIGHT = ROOT.parent / "shared" / "data" / "ztf" / "fink-20181129"


def messages(n: int) -> list[dict]:
    """Return the published messages of the night's first ``n`` alerts."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for path in sorted(NIGHT.glob("*.avro"))[:n]:
        docs = ZTF.parse_packet(path.read_bytes(), now)
        h = docs.history
        aux = {"prv_candidates": h.prv_candidates, "prv_nondetections": h.prv_nondetections}
        out.append(build_message(ZTF, docs.alert, aux, docs.cutouts, [], {}))
    return out


def main() -> None:
    """Run the benchmark and print one line per size."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=30)
    args = p.parse_args()
    msgs = messages(args.alerts)
    render_png(from_message(msgs[0]))  # fonts and caches loaded once
    for label, thumb in (("full", False), ("thumbnail", True)):
        times, sizes = [], []
        for m in msgs:
            start = time.perf_counter()
            sizes.append(len(render_png(from_message(m), thumb=thumb)))
            times.append(time.perf_counter() - start)
        median_ms, max_ms = statistics.median(times) * 1e3, max(times) * 1e3
        print(
            f"{label}: {len(msgs)} pictures, median {median_ms:.0f} ms,"
            f" max {max_ms:.0f} ms, median {statistics.median(sizes) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()

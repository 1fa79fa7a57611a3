"""A night report as text, for the terminal and the log."""

from __future__ import annotations

import datetime as dt
from typing import Any

#: The chain as the report prints it: (count field, label).
_ROWS = (
    ("kafka", "received (Kafka offsets)"),
    ("queued", "queued by the bridge"),
    ("ingested", "ingested"),
    ("quarantined", "quarantined"),
    ("duplicates", "duplicates in a batch"),
    ("crossmatched", "crossmatched"),
    ("enriched", "enriched (ML)"),
    ("filtered", "filtered"),
    ("passed", "passed a filter"),
    ("published", "published"),
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def format_report(report: dict[str, Any], filter_names: dict[str, str] | None = None) -> str:
    """Render a night report (as :func:`~boom_tasks.conductor.report.build_report` makes it).

    Parameters
    ----------
    report
        The report document.
    filter_names
        Filter id -> name, to print names beside ids.
    """
    names = filter_names or {}
    c = report["counts"]
    verdict = "FLAGGED: counts do not add up" if report["flagged"] else "all counts add up"
    lines = [f"{report['survey']} night {report['night']}: {verdict}"]
    lines += [f"  {label:<26} {c[key]:>8}" for key, label in _ROWS if key != "duplicates" or c[key]]
    for fid in sorted(set(c["passes"]) | set(c["published_by_filter"])):
        label = f"{names.get(fid, fid)}"
        passes, published = c["passes"].get(fid, 0), c["published_by_filter"].get(fid, 0)
        lines.append(f"  filter {label}: {passes} new passes, {published} published")
    lines += [f"  problem: {p}" for p in report["problems"]]
    for s in report["stopped"]:
        why = f" ({s['error']})" if s.get("error") else ""
        named = ", ".join(str(x) for x in s["candids"]) or "candids unknown (not ingested)"
        more = " ..." if len(s["candids"]) < s["count"] and s["candids"] else ""
        lines.append(
            f"  stopped before {s['stage']}: {s['count']} alerts {s['state']}{why} in "
            f"{s['queue']}: {named}{more}"
        )
    for d in report["dead_letters"]:
        lines.append(f"  dead letter in {d['queue']}: {d['alerts']} alerts: {d['error']}")
    for stage, pct in report["latency_s"].items():
        shown = ", ".join(f"{k} {_seconds(v)}" for k, v in pct.items())
        lines.append(f"  latency to {stage:<13} {shown}")
    peak = report["peak_rate"]
    if peak["minute"] is not None:
        at = dt.datetime.fromtimestamp(peak["minute"], dt.UTC).strftime("%H:%M UTC")
        lines.append(f"  peak rate: {peak['alerts_per_s']:.1f} alerts/s (minute of {at})")
    return "\n".join(lines)

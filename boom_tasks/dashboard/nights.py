"""The dashboard's "last nights" section: the night conductor's reports, one row a night."""

from __future__ import annotations

from html import escape
from typing import Any

from boom_tasks.dashboard.html import cell, seconds, table

#: Nights shown per survey, latest first.
NIGHTS_SHOWN = 7
#: Counts shown, in chain order: (report field, column title).
COLUMNS = (
    ("queued", "queued"),
    ("ingested", "ingested"),
    ("quarantined", "quarantined"),
    ("crossmatched", "crossmatched"),
    ("enriched", "enriched"),
    ("filtered", "filtered"),
    ("passed", "passed"),
    ("published", "published"),
)


def _row(report: dict[str, Any]) -> str:
    night = escape(str(report["_id"]))
    counts = report.get("counts", {})
    flagged = bool(report.get("flagged"))
    verdict = "; ".join(report.get("problems") or []) if flagged else "adds up"
    p50 = (report.get("latency_s", {}).get("published") or {}).get("p50")
    state = "closed" if report.get("closed") else "open"
    return (
        cell(report["_id"], left=True)
        + cell(state, left=True)
        + "".join(cell(counts.get(key, 0)) for key, _ in COLUMNS)
        + cell(seconds(p50))
        + cell(verdict, left=True, css="bad" if flagged else "", attrs=f'data-night="{night}"')
    )


def nights_html(reports: list[dict[str, Any]] | None, error: str | None = None) -> str:
    """Render the last nights' reports (``<SURVEY>_nights``), flagged nights in red."""
    if error:
        return f'<p class="err">unavailable: {escape(error)}</p>'
    if not reports:
        return '<p class="muted">no night report yet (boom night report SURVEY YYYYMMDD)</p>'
    headers = ["night", "state", *(title for _, title in COLUMNS), "p50 to output", "counts"]
    return table(headers, (_row(r) for r in reports), left=2)

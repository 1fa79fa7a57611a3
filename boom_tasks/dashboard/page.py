"""The dashboard's two pages: the overview, and one queue with its messages."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import quote

from boom_tasks.dashboard.html import bars, cell, page, seconds, table, when
from boom_tasks.dashboard.nights import nights_html
from boom_tasks.dashboard.overview import Overview, Section, SurveyOverview
from boom_tasks.dashboard.replays import replays_html
from boom_tasks.dashboard.thumbnails import FilterPasses
from boom_tasks.monitor.queues import QueueCounts, QueuedMessage
from boom_tasks.monitor.stats import StageFigures

#: Latency percentiles shown per stage.
PERCENTILES = (50, 95, 99)


def _error(section: Section) -> str:
    return f'<p class="err">unavailable: {escape(section.error or "")}</p>'


def _queue_rows(counts: list[QueueCounts]) -> list[str]:
    rows = []
    for c in counts:
        link = f'<td class="l"><a href="/queues/{quote(c.queue)}">{escape(c.queue)}</a></td>'
        cells = [
            cell(getattr(c, state), attrs=f'data-queue="{escape(c.queue)}" data-state="{state}"')
            for state in ("ready", "in_flight", "delayed")
        ]
        dead = cell(
            c.dead,
            attrs=f'data-queue="{escape(c.queue)}" data-state="dead"',
            css="bad" if c.dead else "",
        )
        rows.append(link + "".join(cells) + dead)
    return rows


def _queues(overview: Overview) -> str:
    if overview.queues.error:
        return _error(overview.queues)
    headers = ["queue", "ready", "in flight", "delayed", "dead-lettered"]
    return table(headers, _queue_rows(overview.queues.value))


def _stage_row(f: StageFigures, survey: str) -> str:
    latency = "".join(cell(seconds(f.percentile(q))) for q in PERCENTILES)
    chart = bars(f.per_minute, title=f"{f.stage}: alerts per minute, oldest first")
    # Each survey has its own table: the survey in the attributes tells the rows apart.
    which = f'data-survey="{escape(survey)}" data-stage="{f.stage}"'
    return (
        cell(f.stage, left=True)
        + cell(f"{f.rate(1):.1f}", attrs=f'{which} data-rate="1min"')
        + cell(f"{f.rate():.1f}")
        + cell(sum(f.per_minute), attrs=f'{which} data-count="window"')
        + latency
        + f'<td class="l">{chart}</td>'
    )


def _stages(s: SurveyOverview, window: int) -> str:
    if s.stages.error:
        return _error(s.stages)
    headers = [
        "stage",
        "alerts/s (last min)",
        f"alerts/s ({window} min)",
        f"alerts ({window} min)",
        *(f"p{q} since receipt" for q in PERCENTILES),
        "alerts per minute",
    ]
    return table(headers, (_stage_row(f, s.survey) for f in s.stages.value))


def _lag(s: SurveyOverview) -> str:
    if s.lag.error:
        return _error(s.lag)
    if not s.lag.value:
        return '<p class="muted">the bridge has committed no offset yet</p>'
    # One topic per night accumulates in the group: list only what still waits.
    lagging = [p for p in s.lag.value if p.lag > 0]
    total = sum(p.lag for p in lagging)
    head = (
        f'<p><span data-lag-total="{escape(s.survey)}">{total}</span> alerts wait in Kafka; '
        f"{len(s.lag.value) - len(lagging)} partitions are fully consumed</p>"
    )
    rows = [
        cell(p.topic, left=True)
        + cell(p.partition)
        + cell(p.committed)
        + cell(p.latest)
        + cell(p.lag, attrs=f'data-lag="{escape(p.topic)}:{p.partition}"')
        for p in lagging
    ]
    return head + (
        table(["topic", "partition", "committed", "latest", "lag"], rows) if rows else ""
    )


def _passes(s: SurveyOverview, names: dict[str, str]) -> str:
    if s.passes.error:
        return _error(s.passes)
    hours = s.passes.value
    filters = sorted({f for _, counts in hours for f in counts})
    if not filters:
        return f'<p class="muted">no filter passed an alert in the last {len(hours)} hours</p>'
    rows = []
    for fid in filters:
        series = [counts.get(fid, 0) for _, counts in hours]
        rows.append(
            cell(names.get(fid, "?"), left=True)
            + cell(fid, left=True)
            + cell(series[-1])
            + cell(sum(series), attrs=f'data-filter="{escape(fid)}" data-passes="window"')
            + f'<td class="l">{bars(series, title="passes per hour, oldest first")}</td>'
        )
    headers = ["filter", "id", "this hour", f"last {len(hours)} h", "per hour"]
    return table(headers, rows, left=2)


def _quarantine(s: SurveyOverview) -> str:
    if s.quarantine.error:
        return _error(s.quarantine)
    total, latest = s.quarantine.value
    rows = [
        cell(when(q.at), left=True)
        + cell(q.reason, left=True)
        + cell(q.batch, left=True)
        + cell(q.size)
        + f'<td class="l"><code>{escape(q.id[:16])}</code></td>'
        for q in latest
    ]
    head = f'<p><span data-quarantined="{escape(s.survey)}">{total}</span> packets quarantined'
    if not rows:
        return head + "</p>"
    head += f"; the latest {len(rows)}:</p>"
    return head + table(["at (UTC)", "reason", "batch", "bytes", "sha256"], rows, left=3)


def picture_url(survey: str, candid: int, thumb: bool = False) -> str:
    """Return the dashboard's address of one alert's picture (or of its thumbnail)."""
    return f"/pictures/{quote(survey)}/{candid}.png" + ("?size=thumb" if thumb else "")


def _thumbnails(survey: str, latest: Section | None) -> str:
    """Return each filter's latest passes as thumbnails linking to the full pictures."""
    if latest is None:
        return ""
    if latest.error:
        return _error(latest)
    filters: list[FilterPasses] = latest.value
    if not filters:
        return '<p class="muted">no filter has passed an alert yet</p>'
    rows = []
    for f in filters:
        pictures = "".join(
            f'<a href="{picture_url(survey, p.candid)}" data-picture="{p.candid}">'
            f'<img src="{picture_url(survey, p.candid, thumb=True)}" loading="lazy" '
            f'width="270" height="228" alt="{escape(p.object_id)} candid {p.candid}" '
            f'title="{escape(p.object_id)} · candid {p.candid} · passed {when(p.passed_at)} UTC">'
            "</a>"
            for p in f.passes
        )
        rows.append(
            cell(f.name, left=True)
            + f'<td class="l thumbs" data-thumbnails="{escape(f.filter_id)}">{pictures}</td>'
        )
    return table(["filter", "latest passes, newest first"], rows, left=2)


def _survey(s: SurveyOverview, overview: Overview, latest: Section | None = None) -> str:
    window = overview.window_minutes
    return (
        f"<h2>{escape(s.survey)}</h2>"
        f"<h3>Stages (latency from bridge receipt)</h3>{_stages(s, window)}"
        f"<h3>Bridge consumer lag</h3>{_lag(s)}"
        f"<h3>Filter passes per hour</h3>{_passes(s, overview.filter_names)}"
        + (f"<h3>Latest passes</h3>{_thumbnails(s.survey, latest)}" if latest else "")
        + f"<h3>Quarantine</h3>{_quarantine(s)}"
        + f"<h3>Last nights</h3>{nights_html(s.nights.value, s.nights.error)}"
    )


def overview_page(
    overview: Overview, refresh_s: int, latest: Mapping[str, Section] | None = None
) -> str:
    """Return the dashboard's front page; ``latest``: each survey's latest passes."""
    workers = overview.workers
    alive = workers.error or f"{workers.value} worker threads alive"
    body = (
        "<h1>boom-tasks</h1>"
        f'<p class="muted">{when(overview.at)} UTC · {escape(str(alive))} · '
        f'<a href="/metrics">/metrics</a></p>'
        f"<h2>Queues</h2>{_queues(overview)}"
        f"<h2>Replays</h2>{replays_html(overview.replays.value, overview.replays.error)}"
        + "".join(_survey(s, overview, (latest or {}).get(s.survey)) for s in overview.surveys)
    )
    return page("boom-tasks dashboard", body, refresh_s=refresh_s)


def _message_rows(messages: list[QueuedMessage]) -> list[str]:
    return [
        cell(m.actor, left=True)
        + cell(when(m.enqueued_at), left=True)
        + cell(m.retries)
        + f'<td class="l"><code>{escape(m.args)}</code></td>'
        for m in messages
    ]


def _dead_rows(queue: str, messages: list[QueuedMessage]) -> list[str]:
    rows = []
    for m in messages:
        target = f"/queues/{quote(queue)}/dead/{quote(m.redis_id)}"
        buttons = (
            f'<form method="post" action="{target}/requeue">'
            f'<button data-requeue="{escape(m.redis_id)}">requeue</button></form> '
            f'<form method="post" action="{target}/delete">'
            f'<button data-delete="{escape(m.redis_id)}">delete</button></form>'
        )
        rows.append(
            cell(when(m.died_at), left=True)
            + cell(m.actor, left=True)
            + cell(m.error or "(no stored exception)", left=True, css="err")
            + f'<td class="l"><code>{escape(m.args)}</code></td>'
            + f'<td class="l">{buttons}</td>'
        )
    return rows


def queue_page(
    counts: QueueCounts,
    ready: list[QueuedMessage],
    dead: list[QueuedMessage],
    flash: str | None,
) -> str:
    """Return the page of one queue: its counts, its next messages and its dead letters."""
    q = counts.queue
    notice = f'<p class="flash">{escape(flash)}</p>' if flash else ""
    requeue_all = (
        f'<form method="post" action="/queues/{quote(q)}/dead/requeue-all">'
        '<button data-requeue-all="1">requeue all dead letters</button></form>'
        if dead
        else ""
    )
    body = (
        f'<p><a href="/">← overview</a></p><h1>Queue {escape(q)}</h1>{notice}'
        + table(["queue", "ready", "in flight", "delayed", "dead-lettered"], _queue_rows([counts]))
        + f"<h2>Dead letters ({counts.dead})</h2>{requeue_all}"
        + table(["died (UTC)", "actor", "error", "arguments", ""], _dead_rows(q, dead), left=5)
        + f"<h2>Next ready messages ({counts.ready})</h2>"
        + table(["actor", "enqueued (UTC)", "retries", "arguments"], _message_rows(ready), left=4)
    )
    return page(f"boom-tasks queue {q}", body)

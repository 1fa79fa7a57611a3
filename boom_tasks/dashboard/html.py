"""Small HTML building blocks: escaped cells, tables, bar charts as inline SVG, the layout.

Everything is server-rendered and self-contained (inline CSS, no script or font
from outside), so the page works on an observatory network with no internet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape

#: Shown where a figure is missing (an en dash, as HTML so the source stays ASCII).
MISSING = "&ndash;"

#: The page's whole style sheet.
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#f6f7f9}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}
h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff;margin:.3em 0}
th,td{border:1px solid #d0d5dc;padding:.25em .6em;text-align:right;vertical-align:top}
th{background:#eef1f4}td.l,th.l{text-align:left}
.muted{color:#667}.err{color:#b00020}.bad{background:#fde8e8;font-weight:bold}
.flash{background:#e6f4ea;border:1px solid #9ccaa8;padding:.4em .8em;display:inline-block}
form{display:inline}button{font:inherit;padding:.1em .6em;cursor:pointer}
svg{vertical-align:middle}code{font-size:.9em}a{color:#0b57d0}
td.thumbs img{margin:0 .3em .2em 0;border:1px solid #d0d5dc;background:#fff}
"""


def cell(value: object, *, left: bool = False, attrs: str = "", css: str = "") -> str:
    """Return an escaped ``<td>``; ``attrs`` must already be safe (built by the caller)."""
    classes = " ".join(c for c in ("l" if left else "", css) if c)
    class_attr = f' class="{classes}"' if classes else ""
    text = MISSING if value is None else escape(str(value))
    return f"<td{class_attr}{(' ' + attrs) if attrs else ''}>{text}</td>"


def table(headers: Sequence[str], rows: Iterable[str], *, left: int = 1) -> str:
    """Return a table whose first ``left`` headers are left-aligned; rows are ``<tr>`` bodies."""
    head = "".join(
        f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bars(values: Sequence[int], *, width: int = 180, height: int = 28, title: str = "") -> str:
    """Return an inline SVG bar chart of ``values`` (oldest first)."""
    if not values:
        return ""
    peak = max(values) or 1
    step = width / len(values)
    rects = "".join(
        f'<rect x="{i * step:.1f}" y="{height - height * v / peak:.1f}" '
        f'width="{max(step - 1, 1):.1f}" height="{height * v / peak:.1f}" fill="#4a7bd0"/>'
        for i, v in enumerate(values)
    )
    label = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg width="{width}" height="{height}" role="img" '
        f'style="background:#eef1f4">{label}{rects}</svg>'
    )


def seconds(value: float | None) -> str | None:
    """Return a duration for people (``0.42 s``, ``3.1 min``, ``2.0 h``); None stays None."""
    if value is None:
        return None
    if value < 120:
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def when(value: float | dt.datetime | None) -> str | None:
    """Return a UTC time stamp (``2026-11-22 03:14:07``) of a Unix time or datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        stamp = dt.datetime.fromtimestamp(value, dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def page(title: str, body: str, *, refresh_s: int = 0) -> str:
    """Return a whole HTML document."""
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s > 0 else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{refresh}<style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )

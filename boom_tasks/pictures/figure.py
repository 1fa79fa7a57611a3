"""The figure of one alert: a header, the three stamps side by side, the light curve.

Its thumbnail (the dashboard lists each filter's latest passes as thumbnails of
270 x 228 pixels) is drawn for its size: the full figure shrunk to it had type 3
to 4 pixels high, so nothing in it could be read. It has one line (object and
magnitude) instead of the three-line header, stamp titles in small type, and a
light curve with small tick labels and no legend, title or axis labels: the full
picture, one click away, has them.

Built on matplotlib's object-oriented API with the Agg canvas (no pyplot, no
global figure manager), so concurrent requests of the API each draw their own
figure and nothing needs a display.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from boom_tasks.pictures.lightcurve import MJD_ZERO_JD, draw_light_curve
from boom_tasks.pictures.stamps import Stamp, read_stamp, zscale_limits
from boom_tasks.pictures.view import STAMPS, AlertView

#: Figure size in inches: at :data:`DPI` 900 x 760 pixels, each 63-pixel stamp
#: drawn about 230 pixels wide (upscaled ~3.7 times, nearest pixel: no smoothing).
SIZE_IN = (9.0, 7.6)
#: Resolution of the full picture.
DPI = 100
#: Thumbnail size in inches: 270 x 228 pixels at :data:`DPI`.
THUMB_SIZE_IN = (2.7, 2.28)
#: Type size (points) of the thumbnail's line and stamp titles: ~10 pixels at 100 dpi.
THUMB_FONT = 7.5
#: Characters per line of the header's list of filters.
HEADER_WIDTH = 120
#: Characters per line of an unreadable stamp's reason.
REASON_WIDTH = 28
#: Colour of blank pixels (NaN, fill values): not black or white, which are sky and source.
BLANK_COLOUR = "#5a6f9e"
#: Julian date of the Unix epoch.
JD_UNIX_EPOCH = 2440587.5


def utc(jd: float) -> str:
    """Return a Julian date (UTC) as ``YYYY-MM-DD HH:MM:SS UTC``."""
    when = dt.datetime.fromtimestamp(round((jd - JD_UNIX_EPOCH) * 86400.0, 3), dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def header(view: AlertView) -> str:
    """Return the picture's three-line header: which alert, when and how bright, filters."""
    first = f"{view.survey} {view.object_id} · candid {view.candid}"
    when = (
        "time unknown" if view.jd is None else f"{utc(view.jd)} (MJD {view.jd - MJD_ZERO_JD:.5f})"
    )
    if view.mag is None:
        mag = "no magnitude"
    else:
        err = f" ± {view.mag_err:.2f}" if view.mag_err is not None else ""
        mag = f"{view.band or '?'} = {view.mag:.2f}{err}"
        if view.negative:
            mag += " (negative difference)"
    passed = ", ".join(view.filters) if view.filters else "none listed"
    # Many filters would run off the figure: two lines at most, the rest elided.
    passed = textwrap.fill(
        f"passed: {passed}", HEADER_WIDTH, max_lines=2, placeholder=" ...", break_on_hyphens=False
    )
    return f"{first}\n{when} · {mag}\n{passed}"


def draw_stamp(ax: Axes, field: str, stamp: Stamp, fontsize: float = 10) -> None:
    """Draw one stamp in ``ax``, or the reason it cannot be drawn (titled in ``fontsize``)."""
    ax.set_label(field)
    ax.set_title(STAMPS[field], fontsize=fontsize, pad=2 if fontsize < 10 else 6)
    ax.set_xticks([])
    ax.set_yticks([])
    if stamp.image is None:
        why = textwrap.fill(f"{field} unreadable: {stamp.reason}", REASON_WIDTH)
        if stamp.reason == "no cutout in this alert":
            why = f"{field}:\nno cutout in this alert"
        ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=min(8, fontsize), color="#b00020",
                transform=ax.transAxes, wrap=True)  # fmt: skip
        ax.set_facecolor("#f3f3f3")
        return
    if stamp.rendered:
        # A JPEG is already scaled for display and stored top row first.
        ax.imshow(stamp.image, cmap="gray", origin="upper", interpolation="nearest")
        return
    low, high = zscale_limits(stamp.image)
    grey = colormaps["gray"].with_extremes(bad=BLANK_COLOUR)
    # FITS stores the bottom row first: origin "lower" keeps north up, as DS9 shows it.
    ax.imshow(stamp.image, cmap=grey, origin="lower", interpolation="nearest",
              vmin=low, vmax=high)  # fmt: skip


def build_figure(view: AlertView) -> Figure:
    """Return the figure of one alert (see the module docstring); never raises for bad stamps.

    The stamp axes are labelled with their field name (``ax.get_label()``:
    ``cutoutScience``...), the light curve's ``lightcurve``, so callers and tests
    can find each panel.
    """
    fig = Figure(figsize=SIZE_IN, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(header(view), fontsize=10, ha="left", x=0.02)
    _draw_panels(fig, view, curve_height=1.05, compact=False)
    return fig


def _draw_panels(fig: Figure, view: AlertView, *, curve_height: float, compact: bool) -> None:
    """Draw the three stamps in a row and the light curve under them.

    ``curve_height`` is the light curve's height relative to the stamps';
    ``compact`` (the thumbnail) titles the stamps in :data:`THUMB_FONT` and draws the
    compact light curve.
    """
    grid = fig.add_gridspec(2, 3, height_ratios=(1.0, curve_height))
    fontsize = THUMB_FONT if compact else 10
    for i, field in enumerate(STAMPS):
        ax = fig.add_subplot(grid[0, i])
        draw_stamp(ax, field, read_stamp(view.stamps.get(field)), fontsize=fontsize)
        ax.set_aspect("equal")
    draw_light_curve(fig.add_subplot(grid[1, :]), view, compact=compact)


def thumbnail_title(view: AlertView) -> str:
    """Return the thumbnail's one line: the object, and the alert's band and magnitude."""
    mag = "" if view.mag is None else f" · {view.band or '?'} {view.mag:.2f}"
    return f"{view.object_id}{mag}{' (negative)' if view.negative else ''}"


def build_thumbnail(view: AlertView) -> Figure:
    """Return the thumbnail of one alert (see the module docstring); never raises for bad stamps.

    Its panels are labelled as the full figure's (``cutoutScience``..., ``lightcurve``).
    """
    # Narrow margins: matplotlib's defaults (~4 pixels at this size) are a tenth of it.
    tight = ConstrainedLayoutEngine(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    fig = Figure(figsize=THUMB_SIZE_IN, layout=tight)
    FigureCanvasAgg(fig)
    fig.suptitle(thumbnail_title(view), fontsize=THUMB_FONT, ha="left", x=0.02)
    _draw_panels(fig, view, curve_height=1.1, compact=True)
    return fig


def render_png(view: AlertView, *, thumb: bool = False) -> bytes:
    """Return one alert's picture (``thumb``: its thumbnail) as PNG bytes, at :data:`DPI`."""
    fig = build_thumbnail(view) if thumb else build_figure(view)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()

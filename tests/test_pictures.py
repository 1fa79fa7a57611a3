"""Pictures of real alerts: every ZTF packet schema, Rubin packets, corrupt stamps (no server).

Each picture is checked through the figure that makes it (its panels, titles,
images and light-curve series), against values read independently from the
packet (astropy on the gunzipped stamp, the packet's own history), and the PNG
is decoded to check its size.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from boom_tasks.errors import AlertRejected
from boom_tasks.output.matches import survey_matches
from boom_tasks.output.message import build_message
from boom_tasks.output.print_cli import write_files
from boom_tasks.pictures import (
    build_figure,
    build_thumbnail,
    from_documents,
    from_message,
    render_png,
)
from boom_tasks.pictures.cache import PictureCache
from boom_tasks.pictures.figure import DPI, SIZE_IN, THUMB_SIZE_IN
from boom_tasks.pictures.view import band_of
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import ZTF_DATA, packet_paths, read_packet
from tests.conftest import DATA

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STAMP_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Real packets whose difference stamp is a gzip stream that fails its CRC.
CORRUPT_STAMPS = ("516401801315010009", "516442330015015017", "516476004815015005")
PASS = {"filter_id": "f1", "name": "bright", "version": "v1", "passed_at": NOW, "annotations": {}}


def _schema_key(path: Path) -> tuple[str, str]:
    reader = fastavro.reader(io.BytesIO(read_packet(path)))
    record = next(iter(reader))
    schema = json.dumps(reader.writer_schema, sort_keys=True).encode()
    return str(record.get("schemavsn")), hashlib.sha1(schema).hexdigest()[:8]


def _one_packet_per_schema() -> dict[str, Path]:
    """One publishable packet of every distinct embedded ZTF schema in the data."""
    found: dict[str, Path] = {}
    for path in packet_paths():
        try:
            ZTF.parse_packet(read_packet(path), NOW)
            key = "/".join(_schema_key(path))
        except AlertRejected:
            continue  # prototype packets without objectId: never published, no picture
        except (ValueError, EOFError, IndexError, StopIteration):
            continue  # ztf/corrupt: undecodable packets, quarantined at ingest
        found.setdefault(key, path)
    return found


ZTF_BY_SCHEMA = _one_packet_per_schema()


def _message(survey_name: str, packet: bytes, passes: list[dict] | None = None) -> dict[str, Any]:
    survey = SURVEYS[survey_name]
    docs = survey.parse_packet(packet, NOW)
    h = docs.history
    aux = {"prv_candidates": h.prv_candidates, "prv_nondetections": h.prv_nondetections}
    aux["fp_hists"] = h.fp_hists
    return build_message(survey, docs.alert, aux, docs.cutouts, passes or [PASS], {})


def _panels(fig: Figure) -> dict[str, Axes]:
    return {ax.get_label(): ax for ax in fig.axes if ax.get_label()}


def _fits_pixels(data: bytes) -> np.ndarray:
    """The stamp's image as astropy reads it, independently of the picture code."""
    raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdus:
        image = next(h.data for h in hdus if h.data is not None and h.data.ndim == 2)
        return np.asarray(image, dtype=np.float64)


def _check_stamp(ax: Axes, data: bytes | None) -> None:
    if not data:
        assert len(ax.images) == 0 and any("no cutout" in t.get_text() for t in ax.texts)
        return
    (image,) = ax.images
    if data[:2] == b"\xff\xd8":  # a JPEG (schema 1.x): drawn as it is
        assert image.get_array().shape == Image.open(io.BytesIO(data)).size[::-1]
        return
    pixels = _fits_pixels(data)
    drawn = np.ma.filled(np.ma.masked_invalid(image.get_array()).astype(float), np.nan)
    blank = ~np.isfinite(pixels) | (np.abs(pixels) >= 1e30)
    assert drawn.shape == pixels.shape
    assert np.array_equal(np.isnan(drawn), blank)
    assert np.allclose(drawn[~blank], pixels[~blank])
    # The display range is IRAF's zscale of the sky pixels (fill values left out)
    low, high = ZScaleInterval().get_limits(pixels[~blank])
    assert image.get_clim() == pytest.approx((low, high))


def _labels(ax: Axes) -> list[str]:
    return ax.get_legend_handles_labels()[1]


def _check_png(png: bytes, size_in: tuple[float, float] = SIZE_IN) -> None:
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        assert img.size == (round(size_in[0] * DPI), round(size_in[1] * DPI))


@pytest.mark.parametrize("key", sorted(ZTF_BY_SCHEMA))
def test_picture_of_a_real_alert_of_every_ztf_schema(key: str) -> None:
    # Given a published message made from a real packet of this schema
    path = ZTF_BY_SCHEMA[key]
    msg = _message("ZTF", read_packet(path))
    # When its figure is built
    fig = build_figure(from_message(msg))
    panels = _panels(fig)
    # Then it has the three stamps and the light curve, titled
    assert set(panels) == {*STAMP_FIELDS, "lightcurve"}
    titles = [panels[f].get_title() for f in STAMP_FIELDS]
    assert titles == ["Science", "Template", "Difference"]
    for field in STAMP_FIELDS:
        _check_stamp(panels[field], msg.get(field))
    # And the header names the alert, its time, magnitude and the filter it passed
    head = fig.get_suptitle()
    cand = msg["candidate"]
    assert f"ZTF {msg['objectId']} · candid {msg['candid']}" in head
    assert f"{cand['magpsf']:.2f}" in head and "passed: bright" in head
    assert f"MJD {msg['jd'] - 2400000.5:.5f}" in head
    # And the light curve has the alert's own point ringed, in its band's series
    band = band_of(ZTF, cand)
    lc = panels["lightcurve"]
    labels = _labels(lc)
    assert "this alert" in labels and f"ZTF {band}" in labels
    (ring,) = [line for line in lc.lines if line.get_label() == "this alert"]
    assert list(ring.get_ydata()) == pytest.approx([cand["magpsf"]])
    # And upper limits are drawn when the packet has any
    limits = [p for p in msg["prv_nondetections"] if p.get("diffmaglim") is not None]
    assert any(label.endswith("limit") for label in labels) == bool(limits)
    # And the PNG has the figure's size
    _check_png(render_png(from_message(msg)))


def test_every_schema_variant_in_the_data_is_covered() -> None:
    # 1.x (no schemavsn: three variants), 2.0 to 4.02: a guard against a data folder change
    versions = {key.split("/")[0] for key in ZTF_BY_SCHEMA}
    assert versions >= {"None", "2.0", "3.0", "3.1", "3.2", "3.3", "3.5", "4.01", "4.02"}


@pytest.mark.parametrize("candid", CORRUPT_STAMPS)
def test_a_stamp_that_fails_its_crc_becomes_a_panel_saying_why(candid: str, tmp_path) -> None:
    # Given a real alert whose difference stamp is corrupt in the packet itself
    (path,) = [p for p in packet_paths("ampel-ztf") if p.stem == candid]
    msg = _message("ZTF", read_packet(path))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(msg["cutoutDifference"])
    # When its figure is built, Then nothing raises and the difference panel says why
    panels = _panels(build_figure(from_message(msg)))
    diff = panels["cutoutDifference"]
    assert len(diff.images) == 0
    (why,) = [t.get_text() for t in diff.texts]
    assert "cutoutDifference unreadable" in why and "CRC check failed" in why.replace("\n", " ")
    # And the other stamps and the light curve are drawn
    for field in ("cutoutScience", "cutoutTemplate"):
        _check_stamp(panels[field], msg[field])
    assert "this alert" in _labels(panels["lightcurve"])
    # And boom-print --stamps writes the picture, the readable FITS and the reason
    write_files(msg, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    kinds = (".png", "_science.fits", "_template.fits", "_difference.unreadable.txt")
    assert names == sorted(candid + kind for kind in kinds)
    _check_png((tmp_path / f"{candid}.png").read_bytes())


def test_forced_photometry_of_ztf_is_drawn_from_fluxes() -> None:
    # Given a 4.x alert with forced photometry (fluxes in DN, no magnitudes)
    msg = _message("ZTF", read_packet(ZTF_DATA / "kowalski" / "20231012_2475433850015010009.avro"))
    expected = [m for m in map(ZTF.forced_magnitude, msg["fp_hists"]) if m is not None]
    assert expected, "this packet has forced points above S/N 3"
    # When its figure is built
    lc = _panels(build_figure(from_message(msg)))["lightcurve"]
    # Then the forced series hold exactly those magnitudes (zp - 2.5 log10 |flux|)
    drawn = []
    for container in lc.containers:
        if container.get_label().endswith("forced"):
            drawn += list(container.lines[0].get_ydata())
    assert sorted(drawn) == pytest.approx(sorted(m for m, _ in expected))


def _lsst_by_schema() -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted((DATA / "lsst").rglob("*.avro")):
        found.setdefault(int.from_bytes(path.read_bytes()[1:5], "big"), path)
    return found


@pytest.mark.parametrize("path", list(_lsst_by_schema().values()), ids=str)
def test_picture_of_real_lsst_alerts(path: Path) -> None:
    # Given a real Rubin packet (plain FITS cutouts, magnitudes from nJy fluxes)
    msg = _message("LSST", path.read_bytes())
    fig = build_figure(from_message(msg))
    panels = _panels(fig)
    # Then the stamps are drawn from the FITS images and the light curve is there
    for field in STAMP_FIELDS:
        _check_stamp(panels[field], msg.get(field))
    lc = panels["lightcurve"]
    assert "this alert" in _labels(lc)
    assert f"LSST {msg['candidate']['band']}" in _labels(lc)
    # And the magnitude axis is set by the points, not by huge error bars (bright on top)
    low, high = lc.get_ylim()
    assert high < low and low - high < 20
    # And the time axis spans the points with a margin of 4 % a side, half a day at least
    times = [line.get_xdata() for line in lc.lines if len(line.get_xdata())]
    first, last = min(min(t) for t in times), max(max(t) for t in times)
    left, right = lc.get_xlim()
    assert left < msg["jd"] - 2400000.5 < right
    span = last - first
    assert right - left == pytest.approx(span + 2 * max(0.5, 0.04 * span))
    assert f"LSST {msg['objectId']}" in fig.get_suptitle()


def test_lsst_object_with_a_ztf_alias_shows_both_surveys_on_one_axis() -> None:
    from tests.test_aliases import ZTF_PACKET, _moved, _rich_lsst_packets

    # Given a real ZTF object and a real Rubin alert moved to its position, a day later
    ztf = ZTF.parse_packet(read_packet(ZTF_PACKET), NOW)
    c = ztf.alert["candidate"]
    lsst_packet = _moved(_rich_lsst_packets()[0].read_bytes(), c["ra"], c["dec"], c["jd"] + 1.0)
    lsst = LSST.parse_packet(lsst_packet, NOW)
    ztf_aux = {"_id": ztf.object_id, "prv_candidates": ztf.history.prv_candidates}
    ztf_aux["prv_nondetections"] = ztf.history.prv_nondetections
    lsst_aux = {"prv_candidates": lsst.history.prv_candidates, "fp_hists": lsst.history.fp_hists}
    lsst_aux["aliases"] = {"ZTF": [ztf.object_id]}
    # When the picture is made from the published message, and from the stored documents
    matches = survey_matches(lsst_aux, c["jd"] + 1.0, {"ZTF": {ztf.object_id: ztf_aux}})
    msg = build_message(
        LSST, lsst.alert, lsst_aux, lsst.cutouts, [PASS], {}, survey_matches=matches
    )
    from_msg = from_message(msg)
    from_docs = from_documents(LSST, lsst.alert, lsst_aux, lsst.cutouts, [], {"ZTF": [ztf_aux]})
    # Then both show the ZTF detections beside the LSST points, on one MJD axis
    for view in (from_msg, from_docs):
        lc = _panels(build_figure(view))["lightcurve"]
        labels = _labels(lc)
        assert any(label.startswith("ZTF ") for label in labels)
        assert any(label.startswith("LSST ") for label in labels)
        assert f"ZTF {ztf.object_id}" in lc.get_title()
        ztf_x = [
            x
            for container in lc.containers
            if container.get_label().startswith("ZTF ")
            for x in container.lines[0].get_xdata()
        ]
        expected = [p["jd"] - 2400000.5 for p in ztf.history.prv_candidates if p.get("magpsf")]
        assert sorted(ztf_x) == pytest.approx(sorted(expected))
    # And the stored view lists the ZTF limits too (the message carries detections only)
    assert from_docs.curves[1].limits and not from_msg.curves[1].limits


def test_alert_without_cutouts_and_band_from_filter_id() -> None:
    # The 2021 forced-photometry test stream has no cutouts at all
    msg = _message("ZTF", read_packet(packet_paths("ampel-ztf-20210720")[0]))
    panels = _panels(build_figure(from_message(msg)))
    for field in STAMP_FIELDS:
        _check_stamp(panels[field], None)
    # ZTF's published points carry fid only: the survey's band_field names the band
    assert band_of(ZTF, {"fid": 2}) == "r" and band_of(ZTF, {"fid": 9}) == "fid=9"
    assert band_of(LSST, {"band": "y"}) == "y" and band_of(None, {}) == "?"


def test_stamps_that_are_not_images_say_so() -> None:
    msg = _message("ZTF", read_packet(ZTF_BY_SCHEMA["4.02/ff05b615"]))
    msg["filters"] = [{"name": f"filter-number-{i}", "filter_id": str(i)} for i in range(30)]
    # Given a truncated gzip stream, bytes that are no image, and a FITS with NaNs only
    blank = fits.PrimaryHDU(np.full((5, 5), np.nan, dtype=np.float32))
    buffer = io.BytesIO()
    blank.writeto(buffer)
    msg["cutoutScience"] = msg["cutoutScience"][:100]
    msg["cutoutTemplate"] = b"hello world"
    msg["cutoutDifference"] = buffer.getvalue()
    fig = build_figure(from_message(msg))
    panels = _panels(fig)
    why = {f: " ".join(t.get_text() for t in panels[f].texts).replace("\n", " ") for f in panels}
    assert "EOFError" in why["cutoutScience"]
    assert "not FITS or JPEG" in why["cutoutTemplate"]
    assert "every pixel is blank" in why["cutoutDifference"]
    # And the thumbnail says the same in its smaller panels
    small = _panels(build_thumbnail(from_message(msg)))
    assert "not FITS or JPEG" in " ".join(t.get_text() for t in small["cutoutTemplate"].texts)
    # And thirty filters fit in two header lines, the rest elided
    passed = fig.get_suptitle().split("\n")[2:]
    assert len(passed) == 2 and passed[1].endswith("...") and "filter-number-0," in passed[0]


#: Smallest type of a thumbnail, in pixels: the full figure shrunk to 270 px had 3-4.
MIN_THUMB_TYPE_PX = 8


def _type_px(fig: Figure) -> dict[str, float]:
    """Return each visible text of the figure with its height in pixels at DPI."""
    fig.canvas.draw()  # tick labels exist once drawn
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return {t.get_text(): t.get_fontsize() * DPI / 72 for t in texts}


def test_thumbnail_is_drawn_for_its_size_in_readable_type() -> None:
    # Given a real alert with a light curve
    msg = _message("ZTF", read_packet(ZTF_BY_SCHEMA["4.02/ff05b615"]))
    view = from_message(msg)
    # When its thumbnail is drawn
    thumb = build_thumbnail(view)
    _check_png(render_png(view, thumb=True), THUMB_SIZE_IN)
    # Then it shows the three stamps and the light curve, as the full figure does
    panels = _panels(thumb)
    assert set(panels) == {*STAMP_FIELDS, "lightcurve"}
    for field in STAMP_FIELDS:
        _check_stamp(panels[field], msg[field])
    full_curve, thumb_curve = _panels(build_figure(view))["lightcurve"], panels["lightcurve"]
    assert len(thumb_curve.lines) == len(full_curve.lines) > 1
    # And one line names the object and the alert's magnitude
    negative = " (negative)" if view.negative else ""
    assert thumb.get_suptitle() == f"{view.object_id} · {view.band} {view.mag:.2f}{negative}"
    # And every text in it is at least 8 pixels high (the shrunk full figure: 3 to 4)
    sizes = _type_px(thumb)
    assert sizes and min(sizes.values()) >= MIN_THUMB_TYPE_PX, sizes
    assert min(_type_px(build_figure(view)).values()) * 0.3 < MIN_THUMB_TYPE_PX
    # And there is no legend or axis label to crowd it
    assert thumb_curve.get_legend() is None and not thumb_curve.get_xlabel()


def test_picture_cache_is_bounded_and_expires() -> None:
    now = [0.0]
    cache = PictureCache(entries=2, ttl_s=10.0, clock=lambda: now[0])
    drawn: list[str] = []

    def draw(name: str):
        return lambda: drawn.append(name) or name.encode()

    assert cache.get_or_draw("a", draw("a")) == b"a"
    assert cache.get_or_draw("a", draw("a")) == b"a" and drawn == ["a"]
    cache.get_or_draw("b", draw("b"))
    cache.get_or_draw("a", draw("a"))  # a is now the most recently used
    cache.get_or_draw("c", draw("c"))  # so b is dropped
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == b"a"
    now[0] = 10.5
    assert cache.get("a") is None and cache.get_or_draw("a", draw("a")) == b"a"
    assert drawn == ["a", "b", "c", "a"]
    with pytest.raises(ValueError, match="at least one"):
        PictureCache(entries=0)
    assert math.isclose(cache.ttl_s, 10.0)

"""The pure parts of boom-print and boom-monitor, on real packets (no Kafka)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from boom_tasks.output.message import build_message
from boom_tasks.output.monitor_cli import StreamStats, format_report, latency, percentiles
from boom_tasks.output.print_cli import (
    format_alert,
    jd_to_utc,
    stamp_files,
    write_stamps,
)
from boom_tasks.surveys.ztf import ZTF
from boom_tasks.surveys.ztf.packets import parse_packet
from tests.alerts import packet_paths, read_packet

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _message(folder: str, passes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    docs = parse_packet(read_packet(packet_paths(folder)[0]), NOW)
    h = docs.history
    aux = {
        "prv_candidates": h.prv_candidates,
        "prv_nondetections": h.prv_nondetections,
        "fp_hists": h.fp_hists,
    }
    alert = {**docs.alert, "classifications": {"acai_h": 0.91}}
    passes = (
        passes
        if passes is not None
        else [
            {
                "filter_id": "f1",
                "name": "bright",
                "version": "v1",
                "passed_at": NOW,
                "annotations": {"mag": 18.1},
            },
        ]
    )
    return build_message(
        ZTF, alert, aux, docs.cutouts, passes, {"received": 100.0, "published": 102.5}
    )


def test_format_alert_shows_what_a_reader_needs() -> None:
    # Given a message from a real packet
    msg = _message("kowalski")
    cand = msg["candidate"]
    # When it is formatted
    text = format_alert(msg)
    # Then identity, position, photometry, filters, scores and history are there
    assert msg["objectId"] in text and str(msg["candid"]) in text
    assert f"{msg['ra']:.6f}" in text and f"{cand['magpsf']:.2f}" in text
    assert "bright (f1, v1)" in text and '{"mag":18.1}' in text
    assert "acai_h=0.910" in text
    assert f"{len(msg['prv_candidates'])} detections" in text and "latency 2.50 s" in text
    assert "cutout" not in text


def test_jd_to_utc() -> None:
    assert jd_to_utc(2451545.0) == dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)


# ZTF cutout headers have a non-standard SIMPLE card; astropy warns, the data are fine.
@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_stamps_of_real_fits_cutouts(tmp_path: Path) -> None:
    # Given a real alert with gzipped FITS cutouts
    msg = _message("kowalski")
    # When its stamps are written
    paths = write_stamps(msg, tmp_path)
    # Then there is a FITS file per cutout, holding the survey's image
    names = sorted(p.name for p in paths)
    kinds = ("difference", "science", "template")
    assert names == sorted(f"{msg['candid']}_{k}.fits" for k in kinds)
    with fits.open(tmp_path / f"{msg['candid']}_science.fits") as hdus:
        image = np.asarray(hdus[0].data)
    assert image.shape == (63, 63)


#: Real packets whose difference stamp is a gzip stream that fails its CRC.
CORRUPT_STAMPS = ("516401801315010009", "516442330015015017", "516476004815015005")


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
@pytest.mark.parametrize("candid", CORRUPT_STAMPS)
def test_a_stamp_that_fails_its_crc_is_reported_and_the_others_written(candid, tmp_path):
    # Given a real alert whose difference stamp is corrupt in the packet itself
    (path,) = [p for p in packet_paths("ampel-ztf") if p.stem == candid]
    docs = parse_packet(read_packet(path), NOW)
    msg = build_message(ZTF, docs.alert, None, docs.cutouts, [], {})
    # When its stamps are written, Then nothing raises
    names = sorted(p.name for p in write_stamps(msg, tmp_path))
    # And the science and template stamps are there, the difference says why it is not
    assert names == sorted(
        [f"{candid}_{k}.fits" for k in ("science", "template")]
        + [f"{candid}_difference.unreadable.txt"]
    )
    why = (tmp_path / f"{candid}_difference.unreadable.txt").read_text()
    assert "cutoutDifference" in why and "CRC check failed" in why


def test_stamps_of_jpeg_and_missing_cutouts() -> None:
    # 2017 commissioning alerts carry JPEG cutouts; AMPEL's 2021 archive has none
    jpeg = stamp_files(_message("ampel-commissioning-201712"))
    assert sorted(n.rsplit(".", 1)[1] for n in jpeg) == ["jpg", "jpg", "jpg"]
    assert stamp_files(_message("ampel-ztf-20210720")) == {}


def test_percentiles() -> None:
    assert percentiles([]) == {}
    assert percentiles(list(range(1, 101))) == pytest.approx({50: 50.5, 95: 95.05, 99: 99.01})
    assert percentiles([3.0]) == {50: 3.0, 95: 3.0, 99: 3.0}


def test_latency_needs_both_times() -> None:
    assert latency({"times": {"received": 10.0, "published": 12.0}}) == 2.0
    assert latency({"times": {"received": 10.0, "published": None}}) is None
    assert latency({}) is None


def test_stream_stats_count_per_filter_and_reset_each_interval() -> None:
    # Given alerts passing one or two filters
    both = [{"filter_id": "a", "name": "bright"}, {"filter_id": "b", "name": "red"}]
    stats = StreamStats(started=0.0)
    for i in range(4):
        stats.add(
            {
                "filters": both if i % 2 else both[:1],
                "times": {"received": 0.0, "published": float(i + 1)},
            }
        )
    # When the first interval is reported after 2 s
    first = stats.report(2.0)
    # Then it shows per-filter counts and rates, totals and latency percentiles
    assert "4 alerts (2.00/s)" in first and "total 4" in first
    assert "p50 2.50 s" in first and "(n=4)" in first
    bright, red = (line for line in first.splitlines() if "(a)" in line or "(b)" in line)
    assert bright.split()[:4] == ["bright", "(a)", "4", "2.00/s"]
    assert red.split()[:4] == ["red", "(b)", "2", "1.00/s"]
    # And the next interval starts from zero while totals carry on
    stats.add({"filters": both[1:], "times": {}})
    second = format_report(stats, 4.0)
    assert "1 alerts (0.50/s); total 5 (1.25/s)" in second and "latency" not in second
    assert any(
        line.split()[2:4] == ["0", "0.00/s"] for line in second.splitlines() if "(a)" in line
    )
    assert stats.due(12.0, 10.0) and not stats.due(11.0, 10.0)


def test_boom_print_formats_lsst_alerts_with_their_band_and_sign() -> None:
    from boom_tasks.output.print_cli import format_alert
    from boom_tasks.surveys.lsst import LSST
    from boom_tasks.surveys.lsst.documents import parse_packet as parse_lsst
    from tests.conftest import DATA

    # Given real Rubin alerts, positive and negative differences among them
    signs = set()
    for path in sorted((DATA / "lsst" / "fink").glob("*.avro"))[:20]:
        docs = parse_lsst(path.read_bytes(), NOW)
        cand = docs.alert["candidate"]
        # When boom-print formats their messages
        text = format_alert(build_message(LSST, docs.alert, None, None, [], {}))
        # Then each shows its Rubin band and says so only for a negative difference
        assert f" {cand['band']} {cand['magpsf']:.2f}" in text
        assert ("negative subtraction" in text) == (cand["isdiffpos"] is False)
        signs.add(cand["isdiffpos"])
    assert signs == {True, False}

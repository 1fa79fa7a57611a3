"""Per-alert properties as BOOM computes them, on real ZTF packets (no servers)."""

from __future__ import annotations

import json
import math
import struct
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from boom_tasks.alert.base import AlertDocs
from boom_tasks.ingest.history import merge_history
from boom_tasks.ml.photometry import weighted_linear_fit
from boom_tasks.surveys.ztf.packets import parse_packet
from boom_tasks.surveys.ztf.properties import (
    alert_properties,
    is_near_brightstar,
    is_rock,
    is_star,
    light_curve,
)
from tests.alerts import packet_paths, read_packet

#: A real 4.01 alert of ZTF17aadcuwj: 38 detections (two candids share one
#: exposure) and 21 forced-photometry points, a bright star underneath.
MULTI = "kowalski/20231012_2475433850315015009.avro"
#: The two real alerts of ZTF20aajcdad, 41 minutes apart (g then r).
PAIR = ("kowalski/20200202_1127495406315015005.avro", "kowalski/20200202_1127536316315015004.avro")

#: Every cross-match field the flags read, set to ZTF's "no match" sentinel.
NO_MATCH = {
    key: -999.0
    for n in (1, 2, 3)
    for key in (f"sgscore{n}", f"distpsnr{n}", f"srmag{n}", f"sgmag{n}", f"simag{n}", f"szmag{n}")
} | {"neargaiabright": -999.0, "maggaiabright": -999.0, "ssdistnr": -999.0, "ssmagnr": -999.0}


def _docs(name: str) -> AlertDocs:
    folder, file = name.split("/")
    path = next(p for p in packet_paths(folder) if p.name == file)
    return parse_packet(read_packet(path), datetime.now(UTC))


def _properties(docs: AlertDocs) -> dict[str, Any]:
    history = docs.history
    return alert_properties(
        docs.alert["candidate"],
        history.prv_candidates,
        history.prv_nondetections,
        history.fp_hists,
    )


def _f32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


@pytest.fixture(scope="module")
def real_candidate() -> dict[str, Any]:
    """A real candidate with every cross-match neutralised, to be modified per test."""
    return _docs(MULTI).alert["candidate"] | NO_MATCH


def _with(candidate: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return candidate | fields


# --- flags: each threshold on both sides -------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ssdistnr": 0.0, "ssmagnr": 17.7}, True),
        ({"ssdistnr": 11.99, "ssmagnr": 19.0}, True),
        ({"ssdistnr": 12.0, "ssmagnr": 19.0}, False),  # strict < 12 arcsec
        ({"ssdistnr": 5.0, "ssmagnr": -999.0}, False),  # no magnitude: not a known object
        ({"ssdistnr": -999.0, "ssmagnr": 19.0}, False),  # ZTF's "no known SSO" sentinel
        ({"ssdistnr": None, "ssmagnr": None}, False),
    ],
)
def test_rock(real_candidate: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    assert is_rock(_with(real_candidate, **fields)) is expected


def test_rock_is_false_when_the_fields_are_absent(real_candidate: dict[str, Any]) -> None:
    candidate = {k: v for k, v in real_candidate.items() if not k.startswith("ss")}
    assert is_rock(candidate) is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"sgscore1": 0.77, "distpsnr1": 2.0}, True),
        ({"sgscore1": 0.77, "distpsnr1": 0.0}, True),
        ({"sgscore1": 0.77, "distpsnr1": 2.01}, False),
        ({"sgscore1": _f32(0.76), "distpsnr1": 1.0}, False),  # strict > 0.76
        ({"sgscore1": 0.77, "distpsnr1": -999.0}, False),  # no PS1 match
        # the red-star clause: sgscore1 > 0.2 within 1", r - z or r - i > 3
        ({"sgscore1": 0.3, "distpsnr1": 1.0, "srmag1": 20.0, "szmag1": 16.9}, True),
        ({"sgscore1": 0.3, "distpsnr1": 1.0, "srmag1": 20.0, "simag1": 16.9}, True),
        ({"sgscore1": 0.3, "distpsnr1": 1.0, "srmag1": 20.0, "szmag1": 17.0}, False),
        ({"sgscore1": 0.3, "distpsnr1": 1.01, "srmag1": 20.0, "szmag1": 16.0}, False),
        ({"sgscore1": _f32(0.2), "distpsnr1": 0.5, "srmag1": 20.0, "szmag1": 16.0}, False),
        ({"sgscore1": 0.3, "distpsnr1": 0.5, "srmag1": -999.0, "szmag1": -1003.0}, False),
    ],
)
def test_star(real_candidate: dict[str, Any], fields: dict[str, Any], expected: bool) -> None:
    assert is_star(_with(real_candidate, **fields)) is expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"neargaiabright": 20.0, "maggaiabright": 12.0}, True),
        ({"neargaiabright": 20.01, "maggaiabright": 11.0}, False),
        ({"neargaiabright": 5.0, "maggaiabright": 12.01}, False),
        ({"neargaiabright": 5.0, "maggaiabright": -999.0}, False),
        ({"neargaiabright": None, "maggaiabright": None}, False),
        # a bright PS1 star, any of the three nearest
        ({"sgscore2": 0.5, "distpsnr2": 20.0, "srmag2": 15.0}, True),
        ({"sgscore3": 0.5, "distpsnr3": 19.0, "srmag3": 15.01}, False),
        ({"sgscore1": 0.5, "distpsnr1": 20.01, "srmag1": 14.0}, False),
        ({"sgscore2": _f32(0.49), "distpsnr2": 1.0, "srmag2": 14.0}, False),  # f32 compare
        # PS1's undetermined score right under a bright source
        ({"sgscore1": 0.5, "distpsnr1": 0.49, "srmag1": 17.5, "sgmag1": 16.9}, True),
        ({"sgscore1": 0.5, "distpsnr1": 0.5, "srmag1": 17.5, "sgmag1": 16.9}, False),
        (
            {"sgscore1": 0.5, "distpsnr1": 0.4, "srmag1": 17.5, "sgmag1": 17.0, "simag1": 17.5},
            False,
        ),
    ],
)
def test_near_brightstar(
    real_candidate: dict[str, Any], fields: dict[str, Any], expected: bool
) -> None:
    assert is_near_brightstar(_with(real_candidate, **fields)) is expected


def test_near_brightstar_keeps_booms_sentinel_quirk(real_candidate: dict[str, Any]) -> None:
    # Given sgscore1 == 0.5 under the candidate and PS1 magnitudes all -999 (missing)
    candidate = _with(real_candidate, sgscore1=0.5, distpsnr1=0.1)
    # Then BOOM's "< 17 mag" test passes on the sentinel, and so does ours
    assert is_near_brightstar(candidate) is True


def test_the_real_star_alert_is_flagged_by_hand() -> None:
    # ZTF17aadcuwj: sgscore1 1.0 at 0.48", srmag1 13.16; Gaia G 12.92 at 0.44"
    props = alert_properties(_docs(MULTI).alert["candidate"], [])
    assert props["star"] is True  # 1.0 > 0.76 within 2"
    assert props["near_brightstar"] is True  # PS1 r 13.16 <= 15 (Gaia 12.92 is not <= 12)
    assert props["rock"] is False  # ssdistnr -999


# --- light curve ------------------------------------------------------------------------


def _det(jd: float, mag: float, err: float = 0.1, fid: int = 2, **extra: Any) -> dict[str, Any]:
    return {"jd": jd, "fid": fid, "magpsf": mag, "sigmapsf": err, "isdiffpos": "t"} | extra


def _fp(jd: float, flux: float, unc: float, fid: int = 2, **extra: Any) -> dict[str, Any]:
    base = {"jd": jd, "fid": fid, "forcediffimflux": flux, "forcediffimfluxunc": unc}
    return base | {"magzpsci": 26.0, "procstatus": "0"} | extra


CANDIDATE = _det(2460010.0, 18.0, candid=100)


def test_points_after_the_alert_are_ignored_and_the_candidate_is_always_in() -> None:
    later = _det(2460011.0, 17.0, candid=101)
    points = light_curve(CANDIDATE, [later])
    assert [(p.jd, p.mag) for p in points] == [(2460010.0, 18.0)]


@pytest.mark.parametrize("isdiffpos", ["t", "f", "1", "0"])
def test_both_signs_and_both_spellings_of_isdiffpos_count(isdiffpos: str) -> None:
    earlier = _det(2460009.0, 18.5, candid=99, isdiffpos=isdiffpos)
    assert len(light_curve(CANDIDATE, [earlier])) == 2


def test_a_detection_without_isdiffpos_sigmapsf_or_known_fid_is_dropped() -> None:
    bad = [
        _det(2460009.0, 18.5, candid=1, isdiffpos=None),
        _det(2460008.0, 18.5, candid=2, sigmapsf=None),
        _det(2460007.0, 18.5, candid=3, fid=4),
    ]
    assert len(light_curve(CANDIDATE, bad)) == 1


def test_forced_photometry_magnitude_and_its_snr_cut() -> None:
    # S/N exactly 3 is out (BOOM keeps > 3); a negative flux keeps |flux|'s magnitude
    points = light_curve(CANDIDATE, [], [_fp(2460001.0, 30.0, 10.0), _fp(2460002.0, -300.0, 10.0)])
    assert [p.jd for p in points] == [2460002.0, 2460010.0]
    assert points[0].mag == pytest.approx(26.0 - 2.5 * math.log10(300.0))
    assert points[0].mag_err == pytest.approx(2.5 / math.log(10) * 10.0 / 300.0)


@pytest.mark.parametrize(
    "extra",
    [
        {"procstatus": "56"},
        {"procstatus": None},
        {"magzpsci": None},
        {"forcediffimflux": -99999.0},
        {"forcediffimfluxunc": -99999.0},
        {"forcediffimflux": math.nan},
    ],
)
def test_unusable_forced_photometry_is_dropped(extra: dict[str, Any]) -> None:
    assert len(light_curve(CANDIDATE, [], [_fp(2460001.0, 500.0, 10.0, **extra)])) == 1


def test_one_point_per_exposure_and_band() -> None:
    # Given a forced point and two detections of one exposure, and the alert's own copy
    jd = 2460005.0
    dets = [_det(jd, 17.2, candid=8), _det(jd, 17.1, candid=7), _det(2460010.0, 99.0, candid=100)]
    points = light_curve(CANDIDATE, dets, [_fp(jd, 5000.0, 10.0)])
    # Then the lowest candid wins the exposure, and the candidate record wins its own
    assert [(p.jd, p.mag) for p in points] == [(jd, 17.1), (2460010.0, 18.0)]
    # And an alert's own candid wins over a lower one in its exposure
    own = _det(jd, 17.3, candid=9)
    assert light_curve(own, dets)[-1].mag == 17.3


@pytest.mark.parametrize(("gap", "expected"), [(0.0101, True), (0.0099, False)])
def test_stationary_needs_a_span_over_0_01_day(gap: float, expected: bool) -> None:
    earlier = _det(CANDIDATE["jd"] - gap, 18.1, candid=99, fid=1)  # another band counts too
    assert alert_properties(CANDIDATE, [earlier])["stationary"] is expected


def test_a_forced_point_makes_a_lone_detection_stationary() -> None:
    assert alert_properties(CANDIDATE, [])["stationary"] is False
    assert (
        alert_properties(CANDIDATE, [], forced=[_fp(2460009.0, 500.0, 10.0)])["stationary"] is True
    )


# --- photstats --------------------------------------------------------------------------


def _numpy_fit(t: list[float], m: list[float], e: list[float]) -> tuple[float, float, float]:
    """Independent fit: numpy's weighted polyfit and its unscaled covariance."""
    x = np.asarray(t) - t[0]
    coeffs, cov = np.polyfit(x, m, 1, w=1 / np.asarray(e), cov="unscaled")
    resid = (np.asarray(m) - np.polyval(coeffs, x)) / np.asarray(e)
    return float(coeffs[0]), float(np.sqrt(cov[0, 0])), float(resid @ resid / (len(t) - 2))


def test_photstats_on_a_small_light_curve_match_a_hand_fit() -> None:
    t0 = 2460000.5
    t = [t0, t0 + 1, t0 + 2, t0 + 3.5, t0 + 5, t0 + 8]
    m = [19.0, 18.6, 17.9, 18.3, 18.7, 19.5]
    e = [0.1, 0.05, 0.08, 0.1, 0.2, 0.15]
    dets = [_det(ti, mi, ei, candid=i) for i, (ti, mi, ei) in enumerate(zip(t, m, e, strict=True))]
    candidate = dets[-1]
    stats = alert_properties(candidate, dets)["photstats"]
    assert stats["g"] is None and stats["i"] is None
    r = stats["r"]
    assert (r["peak_jd"], r["peak_mag"], r["peak_mag_err"]) == (t[2], 17.9, 0.08)
    assert r["dt"] == pytest.approx(8.0)
    for fit, sl in ((r["rising"], slice(0, 3)), (r["fading"], slice(2, 6))):
        rate, rate_err, red_chi2 = _numpy_fit(t[sl], m[sl], e[sl])
        assert fit["rate"] == pytest.approx(rate, rel=1e-9)
        assert fit["rate_error"] == pytest.approx(rate_err, rel=1e-9)
        assert fit["red_chi2"] == pytest.approx(red_chi2, rel=1e-9)
        assert fit["nb_data"] == len(t[sl])
        assert fit["dt"] == pytest.approx(t[sl][-1] - t[sl][0])
    assert r["rising"]["rate"] < 0 < r["fading"]["rate"]  # brightening is negative


def test_no_fit_over_a_short_span_or_within_the_noise() -> None:
    t0 = 2460000.5
    # rising spans 0.005 day; fading's brightest + err (18.0+0.3) >= faintest - err (18.5-0.3)
    dets = [_det(t0, 18.5, candid=1), _det(t0 + 0.005, 18.0, 0.3, candid=2)]
    dets.append(_det(t0 + 2, 18.5, 0.3, candid=3))
    r = alert_properties(dets[-1], dets)["photstats"]["r"]
    assert r["rising"] is None and r["fading"] is None
    assert r["peak_mag"] == 18.0


def test_two_points_fit_without_a_reduced_chi2() -> None:
    fit = weighted_linear_fit([0.0, 2.0], [19.0, 18.0], [0.1, 0.1])
    expected_error = pytest.approx(0.1 / math.sqrt(2))  # sqrt(1 / Sxx), Sxx = 2 * 1² / 0.1²
    assert fit == {
        "rate": -0.5,
        "rate_error": expected_error,
        "red_chi2": None,
        "nb_data": 2,
        "dt": 2.0,
    }
    assert weighted_linear_fit([1.0, 1.0], [19.0, 18.0], [0.1, 0.1]) is None  # same time
    assert weighted_linear_fit([0.0, 1.0], [19.0, 18.0], [0.1, 0.0]) is None  # zero error


def test_the_earliest_of_tied_peaks_is_the_peak() -> None:
    dets = [_det(2460001.0, 18.0, candid=1), _det(2460002.0, 18.0, candid=2)]
    assert alert_properties(dets[1], dets)["photstats"]["r"]["peak_jd"] == 2460001.0


def _independent_band_lc(docs: AlertDocs, fid: int) -> tuple[list[float], list[float], list[float]]:
    """The merged light curve of one band, built by hand from the raw packet fields."""
    jd_now = docs.alert["candidate"]["jd"]
    by_jd: dict[float, tuple[float, float]] = {}
    for det in sorted(docs.history.prv_candidates, key=lambda d: d["candid"], reverse=True):
        if det["fid"] == fid and det["jd"] <= jd_now:
            by_jd[det["jd"]] = (det["magpsf"], det["sigmapsf"])  # lowest candid written last
    for fp in docs.history.fp_hists:
        flux, unc = fp["forcediffimflux"], fp["forcediffimfluxunc"]
        good = fp["procstatus"] == "0" and flux != -99999.0 and abs(flux) / unc > 3
        if fp["fid"] == fid and good and fp["jd"] <= jd_now and fp["jd"] not in by_jd:
            mag = fp["magzpsci"] - 2.5 * np.log10(abs(flux))
            by_jd[fp["jd"]] = (float(mag), float(1.0857362047581294 * unc / abs(flux)))
    jds = sorted(by_jd)
    return jds, [by_jd[j][0] for j in jds], [by_jd[j][1] for j in jds]


@pytest.mark.parametrize(("fid", "band"), [(1, "g"), (2, "r")])
def test_photstats_of_a_real_multi_detection_object(fid: int, band: str) -> None:
    docs = _docs(MULTI)
    props = _properties(docs)
    t, m, e = _independent_band_lc(docs, fid)
    peak = int(np.argmin(m))
    stats = props["photstats"][band]
    assert (stats["peak_jd"], stats["peak_mag"]) == (t[peak], m[peak])
    assert stats["dt"] == pytest.approx(t[-1] - t[0])
    assert props["photstats"]["i"] is None and props["stationary"] is True
    fading = _numpy_fit(t[peak:], m[peak:], e[peak:])
    assert stats["fading"]["rate"] == pytest.approx(fading[0], rel=1e-9)
    assert stats["fading"]["rate_error"] == pytest.approx(fading[1], rel=1e-9)
    assert stats["fading"]["nb_data"] == len(t) - peak


def test_the_real_r_peak_is_a_detection_and_g_rises_then_fades() -> None:
    # By hand from the packet: r peaks at 14.8027 (jd 2460201.9407755), its first
    # night, whose three points span 0.0057 day: too short for a rising fit.
    docs = _docs(MULTI)
    props = _properties(docs)
    r, g = props["photstats"]["r"], props["photstats"]["g"]
    assert r["peak_mag"] == pytest.approx(14.8027, abs=1e-4) and r["rising"] is None
    assert g["peak_mag"] == pytest.approx(16.0062, abs=1e-4)
    assert g["rising"]["nb_data"] == 4 and g["fading"]["rate"] > 0


def test_upper_limits_are_accepted_but_change_nothing() -> None:
    docs = _docs(MULTI)
    assert docs.history.prv_nondetections
    candidate, history = docs.alert["candidate"], docs.history
    without = alert_properties(candidate, history.prv_candidates, forced=history.fp_hists)
    assert _properties(docs) == without


def test_an_earlier_alert_ignores_its_objects_later_points() -> None:
    first, second = (_docs(name) for name in PAIR)
    merged = merge_history(None, [first.history, second.history])
    candidate = first.alert["candidate"]
    before = [d for d in merged["prv_candidates"] if d["jd"] <= candidate["jd"]]
    assert len(before) < len(merged["prv_candidates"])
    assert alert_properties(candidate, merged["prv_candidates"]) == alert_properties(
        candidate, before
    )


# --- every real packet, old schemas included ---------------------------------------------


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return value is None or type(value) in (bool, int, float)


def test_every_real_alert_gives_plain_json_values() -> None:
    count = 0
    for path in packet_paths():
        try:
            docs = parse_packet(read_packet(path), datetime.now(UTC))
        except Exception:
            continue  # corrupt or prototype packets are ingest's business
        props = _properties(docs)
        assert _plain(props), path
        json.dumps(props, allow_nan=False)
        count += 1
    assert count > 1700


def test_schema_1_3_has_no_ps1_or_gaia_fields_so_no_star_flags() -> None:
    for path in packet_paths("ampel-commissioning-201712")[:200]:
        docs = parse_packet(read_packet(path), datetime.now(UTC))
        props = alert_properties(docs.alert["candidate"], docs.history.prv_candidates)
        assert props["star"] is False and props["near_brightstar"] is False
        assert props["photstats"][{1: "g", 2: "r", 3: "i"}[docs.alert["candidate"]["fid"]]]

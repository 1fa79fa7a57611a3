"""Fink's anomaly-detection light-curve features on real ZTF alerts (no servers).

Three references, none of them the code under test:
- an independent selection of points written here with scalar ``math`` and the full
  26-feature light_curve extractor Fink builds (``create_extractor``);
- numbers produced by fink-science 7.4.0's own code (see ``FINK_*`` below);
- the real ONNX forests of ``../shared/data/models/fink_aad``.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cache
from pathlib import Path
from typing import Any

import light_curve as lc
import numpy as np
import onnxruntime as rt
import pytest

from boom_tasks.ml import lightcurve as L
from boom_tasks.ml.errors import ModelConfigError
from boom_tasks.surveys.ztf.packets import parse_packet
from tests.alerts import packet_paths, read_packet
from tests.conftest import DATA

AAD = DATA / "models" / "fink_aad"
ZTF = DATA / "ztf"
#: Fink feeds fid 1 to its "r" files and fid 2 to its "g" files (see lightcurve.py).
FILES = {1: ("forest_r_AAD.onnx", "r_means.csv"), 2: ("forest_g_AAD.onnx", "g_means.csv")}

# Reference numbers produced by Fink's own code: fink-science 7.4.0 (PyPI wheel) with
# fink-utils 0.30.0, light-curve 0.9.6 (Fink's pin), pandas 1.5.3, onnxruntime 1.16.3,
# in a throwaway venv; pyspark's udf/pandas_udf decorators stubbed to return the plain
# function. Input per packet as fink_utils' concat_col builds it: prv_candidates.X
# (upper limits included) + [candidate.X] for magpsf, jd, sigmapsf, fid, distnr,
# magnr, sigmagnr, isdiffpos; then extract_features_ad_raw(...) for each packet and
# anomaly_score(pd.Series(all lc_features)) once over all 1,792 readable packets.
# With light-curve 0.9.6 lightcurve.py reproduced all 1,387 band feature sets bit
# for bit and all 1,792 scores exactly; newer light-curve differs by < 1e-8 relative.
FINK_SCORES = {
    "kowalski/20200202_1127561440015015001.avro": -0.016790080815553665,  # DC magnitudes
    "kowalski/20200202_1127561441415015002.avro": -0.020096346735954285,  # no DC
    "kowalski/20231012_2475433850015015001.avro": -0.01578618213534355,  # r: upper limits only
    "kowalski/20231012_2475433850315015009.avro": 0.0,  # two r points at one jd
}
#: ZTF20aahgyet, fid 1 (DC magnitudes: a reference source within 1.5 px).
FINK_FEATURES_DC = {
    "amplitude": 0.2823503259239235,
    "anderson_darling_normal": 0.38209048551166913,
    "beyond_1_std": 0.24,
    "chi2": 0.6245191299116021,
    "cusum": 0.25896926119987673,
    "kurtosis": 1.4964071254902427,
    "linear_fit_slope": -0.017455985498329232,
    "linear_fit_slope_sigma": 0.008768993551683391,
    "linear_trend_noise": 0.09603064895706862,
    "linear_trend_sigma": 0.006164232712907387,
    "magnitude_percentage_ratio_20_10": 0.5690533568915349,
    "magnitude_percentage_ratio_40_5": 0.13840480887060594,
    "maximum_slope": 228.0856941957133,
    "median": 19.644637210939663,
    "median_absolute_deviation": 0.06503637399434226,
    "median_buffer_range_percentage_10": 0.2,
    "skew": -0.028968931801239724,
    "stetson_K": 0.7680539302066626,
}
#: ZTF20aafcnby, fid 2 (difference magnitudes as they are).
FINK_FEATURES_DIFF = {
    "amplitude": 0.32504940032958984,
    "anderson_darling_normal": 1.9856978345906489,
    "beyond_1_std": 0.1111111111111111,
    "chi2": 0.9376311273152412,
    "cusum": 0.32806067204649064,
    "kurtosis": 10.80016351138034,
    "linear_fit_slope": -0.007424143738296632,
    "linear_fit_slope_sigma": 0.005268581080865868,
    "linear_trend_noise": 0.11470076803059912,
    "linear_trend_sigma": 0.00510983323497845,
    "magnitude_percentage_ratio_20_10": 0.744299452981011,
    "magnitude_percentage_ratio_40_5": 0.1098631064882518,
    "maximum_slope": 173.59680090418993,
    "median": 19.067800521850586,
    "median_absolute_deviation": 0.0410003662109375,
    "median_buffer_range_percentage_10": 0.3333333333333333,
    "skew": 2.831625663724778,
    "stetson_K": 0.7324848140987331,
}

#: Features light_curve can compute from a single point.
ONE_POINT_FEATURES = {"amplitude", "median", "median_absolute_deviation",
                      "median_buffer_range_percentage_10"}  # fmt: skip


@cache
def means(fid: int) -> tuple[list[str], np.ndarray]:
    return L.read_means(AAD / FILES[fid][1])


@cache
def session(fid: int) -> rt.InferenceSession:
    return rt.InferenceSession(str(AAD / FILES[fid][0]), providers=["CPUExecutionProvider"])


@cache
def history(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Detections (candidate included) and upper limits of one packet."""
    docs = parse_packet(read_packet(path), dt.datetime.now(dt.UTC))
    return docs.history.prv_candidates, docs.history.prv_nondetections


def real_alerts() -> list[Path]:
    return packet_paths("kowalski") + packet_paths("fink-20181129")


def fink_extractor() -> Any:
    """Fink's full extractor, built here independently of lightcurve.py."""
    ratio = lc.MagnitudePercentageRatio
    return lc.Extractor(
        lc.Mean(), lc.WeightedMean(), lc.StandardDeviation(), lc.Median(), lc.Amplitude(),
        lc.BeyondNStd(nstd=1), lc.Cusum(), lc.InterPercentileRange(quantile=0.1),
        lc.Kurtosis(), lc.LinearTrend(), lc.LinearFit(),
        ratio(quantile_numerator=0.4, quantile_denominator=0.05),
        ratio(quantile_numerator=0.2, quantile_denominator=0.1), lc.MaximumSlope(),
        lc.MedianAbsoluteDeviation(), lc.MedianBufferRangePercentage(quantile=0.1),
        lc.PercentAmplitude(), lc.MeanVariance(), lc.AndersonDarlingNormal(),
        lc.ReducedChi2(), lc.Skew(), lc.StetsonK(),
    )  # fmt: skip


def dc_point(d: dict[str, Any]) -> tuple[float, float]:
    """One point's DC magnitude and error, ZTF Explanatory Supplement p. 107 (scalar)."""
    magnr, sigmagnr = d.get("magnr"), d.get("sigmagnr")
    if magnr is None or magnr < 0 or sigmagnr is None:
        return math.nan, math.nan
    diff = 10 ** (-0.4 * d["magpsf"])
    ref = 10 ** (-0.4 * magnr)
    flux = ref + diff if str(d.get("isdiffpos")) in ("t", "1") else ref - diff
    if flux <= 0:
        return math.nan, math.nan
    sig = math.hypot(d["sigmapsf"] / 1.0857 * diff, sigmagnr / 1.0857 * ref)
    return -2.5 * math.log10(flux), sig / flux * 1.0857


def reference_features(detections: list[dict[str, Any]], fid: int, names: list[str]) -> np.ndarray:
    def usable(v: Any) -> bool:
        return v is not None and not math.isnan(v)

    valid = [d for d in detections if usable(d.get("magpsf")) and usable(d.get("sigmapsf"))]
    behind = any(d.get("distnr") is not None and 0 <= d["distnr"] <= 1.5 for d in valid)
    rows = []
    for d in valid:
        mag, err = dc_point(d) if behind else (d["magpsf"], d["sigmapsf"])
        if d["fid"] == fid and not (math.isnan(mag) or math.isnan(err)):
            rows.append((d["jd"], mag, err))
    rows.sort()
    if len({r[0] for r in rows}) < len(rows):
        return np.full(len(names), np.nan)  # light_curve refuses equal times
    t, m, e = (np.array([row[i] for row in rows], dtype=np.float64) for i in range(3))
    ex = fink_extractor()
    values = dict(zip(ex.names, ex(t, m, e, fill_value=np.nan), strict=True))
    return np.array([values[n] for n in names])


def anomaly_scores(paths: list[Path]) -> np.ndarray:
    """The whole Fink recipe over a batch of packets, through lightcurve.py."""
    scores, features = {}, {}
    for fid in L.FINK_BANDS:
        names, mean = means(fid)
        features[fid] = np.array([L.lightcurve_features(history(p)[0], fid, names) for p in paths])
        present = np.array([L.band_present(history(p)[0], fid, history(p)[1]) for p in paths])
        (out,) = session(fid).run(["score"], {"X": L.fill_missing(features[fid], mean)})
        scores[fid] = np.where(present, np.asarray(out).reshape(-1), np.nan)
    return L.combine_band_scores(scores, features)


def test_means_files_name_known_features_in_model_order() -> None:
    # Given Fink's two means files, When read, Then both list the same 18 known
    # features (the ONNX input width) with finite means.
    (g_names, g_means), (r_names, r_means) = means(2), means(1)
    assert g_names == r_names and len(g_names) == 18
    assert g_names[:2] == ["amplitude", "anderson_darling_normal"]
    L.check_feature_names(g_names)
    assert np.isfinite(g_means).all() and np.isfinite(r_means).all()
    for fid in L.FINK_BANDS:
        assert session(fid).get_inputs()[0].shape[1] == len(g_names)


def test_unknown_feature_names_fail_early() -> None:
    with pytest.raises(ModelConfigError, match="periodogram_peak"):
        L.check_feature_names(["median", "periodogram_peak"])
    with pytest.raises(ModelConfigError, match="unknown"):
        L.lightcurve_features([], 1, ["median", "nope"])


@pytest.mark.parametrize(
    "text",
    ["", ",0\n", ",0\nmedian\n", ",0\nmedian,abc\n", ",0\nmedian,1\nmedian,2\n", ",0\n,1\n"],
)
def test_malformed_means_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "means.csv"
    path.write_text(text)
    with pytest.raises(ModelConfigError):
        L.read_means(path)


def test_missing_means_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match="cannot read"):
        L.read_means(tmp_path / "absent.csv")


def test_features_match_an_independent_computation_on_real_alerts() -> None:
    # Given ~500 real alerts with their history, When features are computed for
    # both bands, Then they equal the independent reference (NaN where it is NaN).
    names = means(1)[0]
    compared = 0
    for path in real_alerts():
        detections = history(path)[0]
        for fid in L.FINK_BANDS:
            got = L.lightcurve_features(detections, fid, names)
            want = reference_features(detections, fid, names)
            # 1-ulp differences of math vs numpy DC magnitudes grow to ~5e-8 in the
            # slopes (fits over jd ~ 2.46e6); everything else agrees to ~1e-15.
            np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=str(path))
            compared += int(np.isfinite(want).any())
    assert compared > 600  # 681 band light curves with at least one feature


@pytest.mark.parametrize(
    ("packet", "fid", "expected"),
    [
        ("kowalski/20200202_1127561440015015001.avro", 1, FINK_FEATURES_DC),
        ("kowalski/20200202_1127561441415015002.avro", 2, FINK_FEATURES_DIFF),
    ],
)
def test_features_equal_finks_own_output(packet: str, fid: int, expected: dict) -> None:
    names = list(expected)
    got = L.lightcurve_features(history(ZTF / packet)[0], fid, names)
    np.testing.assert_allclose(got, list(expected.values()), rtol=1e-7)


def test_band_points_use_dc_magnitudes_when_a_source_is_behind() -> None:
    # Given ZTF20aahgyet (a reference source within 1.5 px), Then its points are DC
    # magnitudes: brighter than the difference magnitudes, sorted by jd.
    detections = history(ZTF / "kowalski/20200202_1127561440015015001.avro")[0]
    t, mag, err = L.band_points(detections, 1)
    raw = sorted((d["jd"], d["magpsf"]) for d in detections if d["fid"] == 1)
    assert len(t) == len(raw) == 25 and np.all(np.diff(t) > 0)
    assert np.all(mag < np.array([m for _, m in raw])) and np.all(err > 0)


def test_small_light_curves_give_nan_filled_by_means() -> None:
    # Given 0, 1 and 2 real points of one band, When features are computed,
    # Then what needs more points is NaN, and fill_missing puts the means there.
    detections = history(ZTF / "kowalski/20200202_1127561441415015002.avro")[0]
    band = sorted((d for d in detections if d["fid"] == 2), key=lambda d: d["jd"])
    names, mean = means(2)
    rows = np.array([L.lightcurve_features(band[:n], 2, names) for n in (0, 1, 2)])
    assert np.isnan(rows[0]).all()
    assert {n for n, v in zip(names, rows[1], strict=True) if np.isfinite(v)} == ONE_POINT_FEATURES
    two = dict(zip(names, rows[2], strict=True))
    assert np.isnan([two["linear_fit_slope"], two["skew"], two["kurtosis"]]).all()
    assert np.isfinite([two["chi2"], two["maximum_slope"], two["stetson_K"]]).all()
    filled = L.fill_missing(rows, mean)
    assert filled.dtype == np.float32 and np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[0], mean.astype(np.float32))
    kept = np.isfinite(rows)
    np.testing.assert_array_equal(filled[kept], rows[kept].astype(np.float32))


def test_fill_missing_rejects_mismatched_means() -> None:
    with pytest.raises(ModelConfigError):
        L.fill_missing(np.zeros((2, 18)), np.zeros(17))


def test_two_points_at_one_jd_make_the_band_absent() -> None:
    # Given ZTF17aadcuwj, two r detections in one exposure, Then light_curve refuses
    # the band: all features NaN and Fink has no feature set for it.
    detections, limits = history(ZTF / "kowalski/20231012_2475433850315015009.avro")
    assert np.isnan(L.lightcurve_features(detections, 2, means(2)[0])).all()
    assert not L.band_present(detections, 2, limits)
    assert L.band_present(detections, 1, limits)


def test_upper_limits_alone_make_a_band_present() -> None:
    # Given ZTF23abjjnqm, one g detection and only upper limits in r, Then Fink
    # still extracts r (all NaN, later the means): r is present with its limits.
    detections, limits = history(ZTF / "kowalski/20231012_2475433850015015001.avro")
    assert not any(d["fid"] == 2 for d in detections)
    assert L.band_present(detections, 2, limits) and not L.band_present(detections, 2)
    assert not L.band_present(detections, 3, limits)


def test_onnx_scores_are_finite_and_deterministic_on_real_alerts() -> None:
    paths = real_alerts()
    for fid in L.FINK_BANDS:
        names, mean = means(fid)
        x = L.fill_missing(np.array([L.lightcurve_features(history(p)[0], fid, names)
                                     for p in paths]), mean)  # fmt: skip
        first = session(fid).run(["score"], {"X": x})[0].reshape(-1)
        again = session(fid).run(["score"], {"X": x[::-1].copy()})[0].reshape(-1)[::-1]
        assert first.shape == (len(paths),) and np.isfinite(first).all()
        np.testing.assert_array_equal(first, again)


def test_anomaly_score_equals_finks_own_output() -> None:
    got = anomaly_scores([ZTF / p for p in FINK_SCORES])
    np.testing.assert_allclose(got, list(FINK_SCORES.values()), rtol=1e-6, atol=1e-9)


def test_combine_averages_bands_and_zeroes_what_fink_cannot_score() -> None:
    # Given per-band scores, one row per case, When combined, Then: the mean in
    # float32; 0.0 when a band is absent (NaN); 0.0 when both bands are all-NaN.
    g = np.array([-0.02, np.nan, -0.03, -0.01], dtype=np.float32)
    r = np.array([[-0.04], [-0.05], [np.nan], [-0.03]], dtype=np.float32)
    empty = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [np.nan, np.nan]])
    full = np.ones((4, 2))
    got = L.combine_band_scores({1: g, 2: r}, {1: empty, 2: empty})
    assert got.dtype == np.float64 and got.shape == (4,)
    assert got[0] == float((np.float32(-0.02) + np.float32(-0.04)) / np.float32(2))
    assert list(got[1:]) == [0.0, 0.0, 0.0]
    assert L.combine_band_scores({1: g, 2: r}, {1: empty, 2: full})[3] != 0.0
    with pytest.raises(ValueError, match="fid 1 and fid 2"):
        L.combine_band_scores({1: g})

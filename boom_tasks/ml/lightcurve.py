"""Light-curve features of Fink's anomaly detection (``fink_aad``), as Fink computes them.

Step 1: pick the points of one band (:func:`band_points`): the object's detections
        with a magnitude and its error, turned into DC magnitudes when a
        reference-image source lies under the object, sorted by ``jd``.
Step 2: compute the light-curve features the model reads, with the ``light-curve``
        package (:func:`lightcurve_features`); what a light curve is too short
        for is NaN.
Step 3: replace NaN by the training means (:func:`fill_missing`) before the ONNX run.
Step 4: average the two bands' scores into ``anomaly_score``
        (:func:`combine_band_scores`); objects Fink cannot score get 0.0.

Source: fink-science 7.4.0 (PyPI wheel, the release the model files come from),
``fink_science/ztf/ad_features/processor.py`` (``create_extractor``,
``extract_features_ad_raw``) and ``fink_science/ztf/anomaly_detection/processor.py``
(``anomaly_score``, ``TwoBandModel``), with fink-utils 0.30.0
``fink_utils/photometry/utils.py`` (``is_source_behind``) and
``vect_conversion.py`` (``vect_dc_mag``). Written from those facts, not copied.

Band naming: Fink's ``forest_r_AAD.onnx`` / ``r_means.csv`` read ZTF **fid 1** (g)
and ``forest_g_AAD.onnx`` / ``g_means.csv`` read **fid 2** (r). The training script
(fink-anomaly/fink_anomaly_detection_model, ``fink_ad_model_train``) suffixes fid 1
features ``_r`` and fid 2 features ``_g``, and ``anomaly_score`` feeds them the same
way, so the pairing is consistent; only the file names are swapped.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import light_curve as lc
import numpy as np

from boom_tasks.ml.errors import ModelConfigError

#: The two bands Fink scores (ZTF fid 1 = g, fid 2 = r); i-band (fid 3) is ignored.
FINK_BANDS = (1, 2)

#: ``is_source_behind``: a reference-image source this close (pixels) means the
#: object sits on a catalogued star, so Fink uses DC (total) magnitudes.
SOURCE_BEHIND_MAX_DISTNR = 1.5

#: Fink's rounding of 2.5 / ln(10) in the magnitude ↔ flux error conversion; the
#: exact constant (1.0857362) would shift DC errors by 4e-5 relative.
_MAG_ERR_FACTOR = 1.0857

#: Features of Fink's ``create_extractor``, in its order: light_curve feature
#: factory and the output names it produces.
_FINK_FEATURES: tuple[tuple[Callable[[], Any], tuple[str, ...]], ...] = (
    (lc.Mean, ("mean",)),
    (lc.WeightedMean, ("weighted_mean",)),
    (lc.StandardDeviation, ("standard_deviation",)),
    (lc.Median, ("median",)),
    (lc.Amplitude, ("amplitude",)),
    (lambda: lc.BeyondNStd(nstd=1), ("beyond_1_std",)),
    (lc.Cusum, ("cusum",)),
    (lambda: lc.InterPercentileRange(quantile=0.1), ("inter_percentile_range_10",)),
    (lc.Kurtosis, ("kurtosis",)),
    (lc.LinearTrend, ("linear_trend", "linear_trend_sigma", "linear_trend_noise")),
    (lc.LinearFit, ("linear_fit_slope", "linear_fit_slope_sigma", "linear_fit_reduced_chi2")),
    (
        lambda: lc.MagnitudePercentageRatio(quantile_numerator=0.4, quantile_denominator=0.05),
        ("magnitude_percentage_ratio_40_5",),
    ),
    (
        lambda: lc.MagnitudePercentageRatio(quantile_numerator=0.2, quantile_denominator=0.1),
        ("magnitude_percentage_ratio_20_10",),
    ),
    (lc.MaximumSlope, ("maximum_slope",)),
    (lc.MedianAbsoluteDeviation, ("median_absolute_deviation",)),
    (lambda: lc.MedianBufferRangePercentage(quantile=0.1), ("median_buffer_range_percentage_10",)),
    (lc.PercentAmplitude, ("percent_amplitude",)),
    (lc.MeanVariance, ("mean_variance",)),
    (lc.AndersonDarlingNormal, ("anderson_darling_normal",)),
    (lc.ReducedChi2, ("chi2",)),
    (lc.Skew, ("skew",)),
    (lc.StetsonK, ("stetson_K",)),
)

#: Every feature name Fink computes → index of its entry in ``_FINK_FEATURES``.
_FEATURE_INDEX = {name: i for i, (_, names) in enumerate(_FINK_FEATURES) for name in names}


def check_feature_names(names: Sequence[str]) -> None:
    """Fail early when a model asks for a feature Fink does not compute.

    Raises
    ------
    ModelConfigError
        Naming the unknown features and listing the known ones.
    """
    unknown = [n for n in names if n not in _FEATURE_INDEX]
    if unknown:
        raise ModelConfigError(
            f"unknown light-curve features {unknown}; known: {sorted(_FEATURE_INDEX)}"
        )


@lru_cache(maxsize=16)
def _extractor(names: tuple[str, ...]) -> tuple[Any, np.ndarray]:
    """Build (once per name tuple) the extractor of ``names`` and their output positions.

    Only the features needed are built: each light_curve feature is evaluated on
    its own, so a subset gives the same values as Fink's full extractor.
    """
    check_feature_names(names)
    wanted = sorted({_FEATURE_INDEX[n] for n in names})
    extractor = lc.Extractor(*(_FINK_FEATURES[i][0]() for i in wanted))
    produced = list(extractor.names)
    expected = [n for i in wanted for n in _FINK_FEATURES[i][1]]
    if produced != expected:
        # A light-curve release renamed an output: values would land in wrong columns.
        raise ModelConfigError(f"light-curve names {produced} differ from Fink's {expected}")
    return extractor, np.array([produced.index(n) for n in names], dtype=np.intp)


def read_means(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a Fink means file: feature names in model input order and their means.

    The file is a pandas Series written with ``to_csv``: a header line ``,0``,
    then one ``name,mean`` line per feature.

    Raises
    ------
    ModelConfigError
        If the file cannot be read, a line is malformed, a name repeats, or it is empty.
    """
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ModelConfigError(f"cannot read feature means {path}: {e}") from None
    if rows and rows[0][:1] == [""]:
        rows = rows[1:]  # the Series header (no index name, column "0")
    names: list[str] = []
    means: list[float] = []
    for number, row in enumerate(rows, start=1):
        try:
            name, value = row
            means.append(float(value))
        except ValueError:
            raise ModelConfigError(f"{path}: bad line {number}: {row!r} (want name,mean)") from None
        if not name or name in names:
            raise ModelConfigError(f"{path}: empty or repeated feature name {name!r}")
        names.append(name)
    if not names:
        raise ModelConfigError(f"{path}: no feature means")
    return names, np.array(means, dtype=np.float64)


def _column(points: Sequence[dict[str, Any]], field: str) -> np.ndarray:
    """One field of every point as float64, missing or null as NaN."""
    values = [p.get(field) for p in points]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _dc_magnitudes(
    points: Sequence[dict[str, Any]], mag: np.ndarray, err: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Difference magnitudes → DC magnitudes (ZTF Explanatory Supplement, p. 107).

    The reference source's flux is added to (``isdiffpos`` "t"/"1") or reduced by
    the difference flux; a negative or missing ``magnr`` gives NaN, and so does a
    negative total flux.
    """
    magnr = _column(points, "magnr")
    magnr[magnr < 0.0] = np.nan
    sigmagnr = _column(points, "sigmagnr")
    positive = np.array([str(p.get("isdiffpos")) in ("t", "1") for p in points], dtype=bool)
    diff_flux = 10 ** (-0.4 * mag)
    diff_sig = (err / _MAG_ERR_FACTOR) * diff_flux
    ref_flux = 10 ** (-0.4 * magnr)
    ref_sig = (sigmagnr / _MAG_ERR_FACTOR) * ref_flux
    flux = np.where(positive, ref_flux + diff_flux, ref_flux - diff_flux)
    sig = np.sqrt(diff_sig**2 + ref_sig**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        dc_mag = -2.5 * np.log10(flux)
        dc_err = sig / flux * _MAG_ERR_FACTOR
    return dc_mag, dc_err


def band_points(
    detections: Iterable[dict[str, Any]], fid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Select the points of band ``fid`` that Fink's features are computed on.

    Kept: detections whose ``magpsf`` and ``sigmapsf`` are not null/NaN (upper
    limits are dropped). If *any* kept point of *any* band has a reference source
    within ``SOURCE_BEHIND_MAX_DISTNR`` pixels, every point becomes a DC magnitude
    and points where that is undefined are dropped. Nothing is de-duplicated: two
    points at the same ``jd`` stay, and light_curve then refuses the band.

    Parameters
    ----------
    detections
        ZTF candidate dicts (``jd``, ``fid``, ``magpsf``, ``sigmapsf``, ``distnr``,
        ``magnr``, ``sigmagnr``, ``isdiffpos``), of every band, in any order.
    fid
        The band: 1 (g), 2 (r), 3 (i).

    Returns
    -------
    t, mag, err
        ``jd``, magnitude and its error, float64, sorted by ``jd``.
    """
    points = list(detections)
    mag, err = _column(points, "magpsf"), _column(points, "sigmapsf")
    valid = ~(np.isnan(mag) | np.isnan(err))
    points = [p for p, ok in zip(points, valid, strict=True) if ok]
    mag, err = mag[valid], err[valid]
    distnr = _column(points, "distnr")
    if np.any((distnr >= 0) & (distnr <= SOURCE_BEHIND_MAX_DISTNR)):
        mag, err = _dc_magnitudes(points, mag, err)
    jd, band = _column(points, "jd"), _column(points, "fid")
    keep = (band == fid) & ~(np.isnan(mag) | np.isnan(err))
    order = np.argsort(jd[keep], kind="stable")
    return jd[keep][order], mag[keep][order], err[keep][order]


def _refused(t: np.ndarray) -> bool:
    """Whether light_curve rejects these times ("t must be in ascending order")."""
    return bool(np.any(np.diff(t) <= 0))


def lightcurve_features(
    detections: Iterable[dict[str, Any]], fid: int, names: Sequence[str]
) -> np.ndarray:
    """Compute the light-curve features ``names`` of band ``fid``, as Fink does.

    Parameters
    ----------
    detections
        The object's detections (see :func:`band_points`).
    fid
        The band.
    names
        Feature names, in model input order (see :func:`read_means`).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(names),)``, float64. A feature the light curve is too short
        for is NaN (0 points: all; 1 point: all but median, amplitude and other
        spreads; 2-3 points: fits, skew, kurtosis...). When light_curve refuses
        the light curve (two points at one ``jd``) every feature is NaN; Fink then
        has no features for the band at all (see :func:`band_present`).

    Raises
    ------
    ModelConfigError
        If a name is unknown (check them at load with :func:`check_feature_names`).
    """
    extractor, positions = _extractor(tuple(names))
    t, mag, err = band_points(detections, fid)
    if _refused(t):
        return np.full(len(names), np.nan)
    try:
        values = extractor(t, mag, err, fill_value=np.nan)
    except ValueError:
        # light_curve validates its input with ValueError; Fink skips the band then.
        return np.full(len(names), np.nan)
    return np.asarray(values, dtype=np.float64)[positions]


def band_present(
    detections: Iterable[dict[str, Any]],
    fid: int,
    nondetections: Iterable[dict[str, Any]] = (),
) -> bool:
    """Whether Fink has a feature set for band ``fid`` (else the alert scores 0.0).

    Fink extracts a band when *any* history point is in it, upper limits
    included, even if no usable detection remains (its features are then all
    NaN and filled by the means); it has none when light_curve refuses the band.

    Parameters
    ----------
    detections
        The object's detections.
    fid
        The band.
    nondetections
        Its upper limits (``prv_nondetections``) over the same time span.
    """
    points = list(chain(detections, nondetections))
    if not any(p.get("fid") == fid for p in points):
        return False
    t, _, _ = band_points(points, fid)
    return not _refused(t)


def fill_missing(features: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Replace NaN features by the training means, as Fink's ``fillna`` does.

    Parameters
    ----------
    features
        Shape ``(N, F)``.
    means
        Shape ``(F,)``, from :func:`read_means`.

    Returns
    -------
    numpy.ndarray
        Shape ``(N, F)``, float32 (the ONNX input type); only NaN is replaced.

    Raises
    ------
    ModelConfigError
        If the shapes do not match.
    """
    features = np.asarray(features, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    if features.ndim != 2 or means.shape != (features.shape[1],):
        raise ModelConfigError(
            f"features {features.shape} and means {means.shape} do not match (want (N, F), (F,))"
        )
    return np.where(np.isnan(features), means, features).astype(np.float32)


def combine_band_scores(
    scores_by_fid: Mapping[int, np.ndarray],
    features_by_fid: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Combine the two bands' forest scores into Fink's ``anomaly_score``.

    Fink (fink-science 7.4.0, ``anomaly_detection/processor.py``, ``anomaly_score``
    and ``TwoBandModel.anomaly_score``) averages the two forests' float32 scores;
    there is no other transformation (lower = more anomalous). An object gets 0.0
    (not NaN) when it lacks a band — fewer than two of fid 1 and 2 have a feature
    set, so with one band only there is *no* score from that band alone — or
    when every model feature of both bands is NaN.

    Parameters
    ----------
    scores_by_fid
        Forest score per object for fid 1 and fid 2, shape ``(N,)`` or ``(N, 1)``;
        NaN where :func:`band_present` is False for that object.
    features_by_fid
        Optionally the unfilled features per band, shape ``(N, F)``, to apply the
        "both bands all NaN" rule.

    Returns
    -------
    numpy.ndarray
        Shape ``(N,)``, float64.
    """
    missing = [fid for fid in FINK_BANDS if fid not in scores_by_fid]
    if missing:
        raise ValueError(f"no scores for bands {missing}; Fink combines fid 1 and fid 2")
    g, r = (np.asarray(scores_by_fid[fid], dtype=np.float32).reshape(-1) for fid in FINK_BANDS)
    combined = ((g + r) / np.float32(2)).astype(np.float64)
    unscored = ~np.isfinite(combined)
    if features_by_fid is not None:
        empty = [np.isnan(np.asarray(features_by_fid[fid])).all(axis=1) for fid in FINK_BANDS]
        unscored |= empty[0] & empty[1]
    combined[unscored] = 0.0
    return combined

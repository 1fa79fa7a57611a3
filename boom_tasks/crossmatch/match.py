"""Turn one catalog's candidate rows into each position's matches (pure, no database).

Step 1: pair positions with rows inside the catalog's outer ``radius``
        (:func:`boom_tasks.sky.cone.match_pixels`: exact great-circle distances);
Step 2: in distance mode, keep a pair only inside the galaxy's own radius
        (:func:`distance_radii`);
Step 3: per position, nearest first, cut at ``max_results``, and shape each match:
        the projected fields plus ``distance_arcsec`` (and ``distance_kpc``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from boom_tasks.crossmatch.config import CrossmatchCatalog
from boom_tasks.sky.cone import Pairs, match_pixels, row_arrays
from boom_tasks.sky.healpix import HPX_FIELD, IntArray
from boom_tasks.sky.sphere import FloatArray, ra_from_geojson

#: Radians per arcsecond.
RAD_PER_ARCSEC = math.pi / (180.0 * 3600.0)

#: BOOM's redshift scale: 1 kpc per arcsec at z = 0.05 (``src/utils/spatial.rs``), a
#: linear approximation of the angular-diameter distance at low redshift.
Z_PER_KPC_PER_ARCSEC = 0.05


def kpc_per_arcsec(distance: FloatArray, unit: str) -> FloatArray:
    """Return the projected kiloparsecs per arcsecond at each galaxy's distance.

    Parameters
    ----------
    distance
        Angular-diameter distances in Mpc (``unit="Mpc"``) or redshifts (``unit="z"``).
    unit
        ``"Mpc"`` or ``"z"``.
    """
    if unit == "z":
        return distance / Z_PER_KPC_PER_ARCSEC
    return distance * 1000.0 * RAD_PER_ARCSEC


def _as_distance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def row_scales(spec: CrossmatchCatalog, rows: Sequence[dict[str, Any]]) -> FloatArray:
    """Return each row's kpc per arcsec (NaN for rows without a positive distance)."""
    assert spec.distance_key
    dist = np.array([_as_distance(r.get(spec.distance_key)) for r in rows], dtype=np.float64)
    scale = kpc_per_arcsec(dist, spec.distance_unit)
    scale[~(dist > 0)] = np.nan  # no distance, or a nonsensical one: the row cannot match
    return scale


def _radii(spec: CrossmatchCatalog, scale: FloatArray) -> FloatArray:
    assert spec.distance_max and spec.distance_max_near
    # NaN scales give NaN radii (np.minimum propagates NaN), which match nothing.
    return np.minimum(spec.distance_max / scale, min(spec.distance_max_near, spec.radius))


def distance_radii(spec: CrossmatchCatalog, rows: Sequence[dict[str, Any]]) -> FloatArray:
    """Return each row's match radius in arcsec (NaN for rows without a usable distance).

    ``min(distance_max / kpc_per_arcsec, distance_max_near, radius)``: see
    :class:`~boom_tasks.crossmatch.config.CrossmatchCatalog`. BOOM uses
    ``distance_max_near`` for every galaxy below z = 0.01 and the scaled radius
    above; the minimum makes the radius continuous in distance instead.
    """
    return _radii(spec, row_scales(spec, rows))


def _shape(
    spec: CrossmatchCatalog, row: dict[str, Any], dist: float, scale: float | None
) -> dict[str, Any]:
    """Return the stored match: the projected fields and the separations."""
    if spec.projection:
        match = {k: v for k, v in row.items() if k in spec.projection or k == "_id"}
    else:
        match = {k: v for k, v in row.items() if k != HPX_FIELD}
    match["distance_arcsec"] = dist
    if scale is not None:
        match["distance_kpc"] = dist * scale
    return match


def _in_distance_radius(pairs: Pairs, radii: FloatArray) -> Pairs:
    keep = pairs.distance_arcsec <= radii[pairs.row]  # NaN radius compares False
    return Pairs(pairs.cone[keep], pairs.row[keep], pairs.distance_arcsec[keep])


def match_rows(
    spec: CrossmatchCatalog,
    ra: FloatArray,
    dec: FloatArray,
    cover: tuple[IntArray, IntArray],
    rows: Sequence[dict[str, Any]],
) -> list[list[dict[str, Any]]]:
    """Return each position's matches in one catalog, nearest first.

    Parameters
    ----------
    spec
        The catalog's crossmatch configuration.
    ra, dec
        Positions in degrees.
    cover
        Pixels covering each position's cone of ``spec.radius`` at the catalog's
        HEALPix order (:func:`boom_tasks.sky.cones_pixels`).
    rows
        Catalog documents of those pixels (with ``coordinates.radec_geojson`` and ``hpx``).

    Returns
    -------
    list of list of dict
        One list per position; each match has ``distance_arcsec`` (and, in distance
        mode, ``distance_kpc``).
    """
    radius = np.full(len(ra), spec.radius, dtype=np.float64)
    row_ra, row_dec, row_pix = row_arrays(rows)
    pairs = match_pixels(ra, dec, radius, cover, row_ra, row_dec, row_pix)
    scale = row_scales(spec, rows) if spec.use_distance else None
    if scale is not None:
        pairs = _in_distance_radius(pairs, _radii(spec, scale))
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(ra))]
    for c, r, dist in zip(pairs.cone, pairs.row, pairs.distance_arcsec, strict=True):
        if spec.max_results is None or len(out[c]) < spec.max_results:
            kpc = None if scale is None else float(scale[r])
            out[c].append(_shape(spec, rows[r], float(dist), kpc))
    return out


def geojson_position(doc: dict[str, Any]) -> tuple[float, float]:
    """Return (ra, dec) in degrees of a document's ``coordinates.radec_geojson``."""
    lon, lat = doc["coordinates"]["radec_geojson"]["coordinates"]
    return float(ra_from_geojson(lon)), float(lat)


__all__ = ["distance_radii", "geojson_position", "kpc_per_arcsec", "match_rows", "row_scales"]

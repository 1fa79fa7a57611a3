"""Nested HEALPix pixel ids of positions and of the pixels covering cones.

Catalog rows (and alerts) store the nested pixel id of their position at one
order in a B-tree-indexed field. A cone search then asks the database for the
rows whose pixel is among the few pixels covering the cone, an equality lookup
any B-tree answers fast, and computes exact separations on that small set.
The pixel computations are cdshealpix's (CDS, Rust): its cone cover is
conservative, it may add a pixel the cone only grazes but never misses one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

#: Default HEALPix order (depth) of catalog pixel ids. Order 10 has 12,582,912
#: pixels of about 3.4 arcmin (206 arcsec) on a side: about the largest match
#: radius of the crossmatch (galaxy catalogs in distance mode search a few
#: arcmin), so a cone covers 1 to 4 pixels at the 2 arcsec radius of star
#: catalogs and about 15 at 5 arcmin, and VSX's 1.9 M rows give 0.15 per pixel.
DEFAULT_ORDER = 10

#: Field holding the nested pixel id in catalog and alert documents.
HPX_FIELD = "hpx"

#: Deepest order cdshealpix accepts (pixel ids then still fit in an int64).
MAX_ORDER = 29

#: Extra depth at which cdshealpix tests pixels against the cone: a tighter cover
#: (fewer grazed pixels) for a few microseconds more per cone.
COVER_DEPTH_DELTA = 2

IntArray = npt.NDArray[np.int64]


def _astro() -> tuple[Any, Any, Any, Any]:
    """Import astropy and cdshealpix on first use.

    ``boom`` commands that never compute a pixel should not pay their ~1 s of import.
    """
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix import nested

    return u, Latitude, Longitude, nested


def _check_order(order: int) -> None:
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"HEALPix order must be in [0, {MAX_ORDER}], got {order}")


def pixel_size_arcsec(order: int) -> float:
    """Return the side of a pixel at ``order`` (square root of its area), in arcsec."""
    _check_order(order)
    return math.degrees(math.sqrt(4 * math.pi / (12 * 4**order))) * 3600.0


def cover_cells(radius_arcsec: npt.ArrayLike, order: int) -> float:
    """Return about how many pixels at ``order`` cover cones of these radii, all together.

    The cap's area over a pixel's, plus a ring of boundary pixels: an estimate made
    before any cover is computed, to refuse a request whose cover would take minutes.
    """
    radius = np.radians(np.asarray(radius_arcsec, dtype=np.float64) / 3600.0)
    cap = 2 * np.pi * (1 - np.cos(radius))
    pixel_area = 4 * np.pi / (12 * 4**order)
    ring = 2 * np.pi * np.sin(radius) / math.sqrt(pixel_area)
    return float(np.sum(cap / pixel_area + ring + 4))


def order_for_radius(radius_arcsec: float) -> int:
    """Return the deepest order whose pixels are at least ``radius_arcsec`` on a side.

    That order keeps a cone's cover to a handful of pixels while a pixel holds as
    few rows as possible.
    """
    if radius_arcsec <= 0:
        raise ValueError(f"radius must be positive, got {radius_arcsec}")
    order = 0
    while order < MAX_ORDER and pixel_size_arcsec(order + 1) >= radius_arcsec:
        order += 1
    return order


def pixel_ids(ra: npt.ArrayLike, dec: npt.ArrayLike, order: int = DEFAULT_ORDER) -> IntArray:
    """Return the nested pixel ids of positions.

    Parameters
    ----------
    ra, dec
        Positions in degrees; ra is wrapped into [0, 360), dec must be in [-90, 90].
    order
        HEALPix order (depth).

    Returns
    -------
    numpy.ndarray
        int64 pixel ids (int64, not cdshealpix's uint64: BSON has no unsigned type).
    """
    _check_order(order)
    ra_arr = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec_arr = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    u, Latitude, Longitude, nested = _astro()
    ipix = nested.lonlat_to_healpix(Longitude(ra_arr * u.deg), Latitude(dec_arr * u.deg), order)
    return np.asarray(ipix, dtype=np.int64)


def cone_pixels(
    ra: float, dec: float, radius_arcsec: float, order: int = DEFAULT_ORDER
) -> IntArray:
    """Return the sorted nested pixel ids covering one cone.

    Parameters
    ----------
    ra, dec
        Centre in degrees.
    radius_arcsec
        Radius in arcseconds, in (0, 180 degrees].
    order
        HEALPix order of the returned pixels.
    """
    _check_order(order)
    if not 0 < radius_arcsec <= 180 * 3600:
        raise ValueError(f"cone radius must be in (0, 648000] arcsec, got {radius_arcsec}")
    u, Latitude, Longitude, nested = _astro()
    ipix, _, _ = nested.cone_search(
        Longitude(ra * u.deg),
        Latitude(dec * u.deg),
        radius_arcsec * u.arcsec,
        order,
        depth_delta=COVER_DEPTH_DELTA,
        flat=True,
    )
    return np.sort(np.asarray(ipix, dtype=np.int64))


def cones_pixels(
    ra: npt.ArrayLike, dec: npt.ArrayLike, radius_arcsec: npt.ArrayLike, order: int = DEFAULT_ORDER
) -> tuple[IntArray, IntArray]:
    """Return the pixels covering each of many cones, flattened.

    Parameters
    ----------
    ra, dec
        Centres in degrees, one per cone.
    radius_arcsec
        Radii in arcseconds, one per cone or one for all.
    order
        HEALPix order of the returned pixels.

    Returns
    -------
    pixels, cone_index
        Two int64 arrays of equal length: ``pixels[k]`` covers cone ``cone_index[k]``;
        a cone's pixels are distinct.
    """
    ra_arr = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec_arr = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    radius = np.broadcast_to(np.asarray(radius_arcsec, dtype=np.float64), ra_arr.shape)
    if dec_arr.shape != ra_arr.shape:
        raise ValueError(f"ra and dec differ in shape: {ra_arr.shape} vs {dec_arr.shape}")
    # cdshealpix covers one cone per call; at ~0.1 ms a call, a 1000-alert batch costs 0.1 s.
    covers = [
        cone_pixels(float(r), float(d), float(rad), order)
        for r, d, rad in zip(ra_arr, dec_arr, radius, strict=True)
    ]
    if not covers:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    sizes = np.fromiter((len(c) for c in covers), dtype=np.int64, count=len(covers))
    return np.concatenate(covers), np.repeat(np.arange(len(covers), dtype=np.int64), sizes)

"""Exact great-circle separations, vectorised with numpy.

The Vincenty form of the great-circle distance is used (as astropy's
``angular_separation`` does): unlike the law of cosines it keeps full precision
for tiny separations, and unlike the plain haversine it stays exact for
antipodal points. Longitudes enter only through sin/cos of their difference, so
ra = 359.9999 and ra = 0.0001 are 0.0002 degrees apart (times cos dec), and a
position at the pole is the same whatever its ra.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Arcseconds per degree.
ARCSEC_PER_DEG = 3600.0

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


def angular_separation(
    ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike, dec2: ArrayLike
) -> FloatArray:
    """Return the great-circle separation between positions, in degrees.

    Parameters
    ----------
    ra1, dec1, ra2, dec2
        Right ascensions and declinations in degrees; arrays broadcast together.

    Returns
    -------
    numpy.ndarray
        Separations in degrees, in [0, 180].
    """
    lon1, lat1 = np.radians(ra1), np.radians(dec1)
    lon2, lat2 = np.radians(ra2), np.radians(dec2)
    dlon = lon2 - lon1
    sin_dlon, cos_dlon = np.sin(dlon), np.cos(dlon)
    sin1, cos1 = np.sin(lat1), np.cos(lat1)
    sin2, cos2 = np.sin(lat2), np.cos(lat2)
    num1 = cos2 * sin_dlon
    num2 = cos1 * sin2 - sin1 * cos2 * cos_dlon
    denominator = sin1 * sin2 + cos1 * cos2 * cos_dlon
    return np.asarray(np.degrees(np.arctan2(np.hypot(num1, num2), denominator)), dtype=np.float64)


def ra_from_geojson(lon: ArrayLike) -> FloatArray:
    """Return right ascensions in [0, 360) from GeoJSON longitudes (``ra - 180``).

    Parameters
    ----------
    lon
        Longitudes in [-180, 180] as stored in ``coordinates.radec_geojson``.
    """
    return np.asarray(np.mod(np.asarray(lon, dtype=np.float64) + 180.0, 360.0), dtype=np.float64)

"""Which documents lie in which cones: HEALPix where the collection has it, else one query.

Collections with a HEALPix pixel field (loaded catalogs, alert collections) go
through :func:`boom_tasks.sky.cone.cone_search`: every cone of the request in
one indexed ``$in`` query on the pixels, exact separations with numpy. Others
(the aux collections, a collection loaded by hand) are answered by ONE query
whose ``$or`` holds a ``$geoWithin`` per cone, then the same exact separations:
correct everywhere, but the database walks the 2dsphere index once per cone,
so it is the slow path, not the one alerts and catalogs take.

boom-client's ``near_search`` arrives as a ``find`` whose filter holds a
``$nearSphere`` on ``coordinates.radec_geojson`` (:func:`parse_near`); it is
answered as a one-cone search, nearest first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymongo.collection import Collection

from boom_tasks.api.errors import BadRequest
from boom_tasks.services.mongo import user_query
from boom_tasks.sky.cone import GEOJSON_FIELD, cone_search
from boom_tasks.sky.sphere import ARCSEC_PER_DEG, angular_separation, ra_from_geojson

#: Metres per radian in boom-client's ``near_search``: it turns ``radius_arcsec``
#: into a ``$maxDistance`` with this mean Earth radius (MongoDB itself uses
#: 6378.1 km). Turning it back with the same radius gives exactly the radius the
#: user asked for.
CLIENT_EARTH_RADIUS_M = 6_371_008.8
#: Arcseconds per radian.
ARCSEC_PER_RAD = math.degrees(1.0) * ARCSEC_PER_DEG
#: Largest radius: a cone of 180 degrees is the whole sphere; nothing lies farther.
MAX_RADIUS_ARCSEC = 180.0 * 3600.0
#: The same radius as boom-client's ``$maxDistance``, in metres.
_MAX_METRES = math.pi * CLIENT_EARTH_RADIUS_M
#: Relative error of a radius sent as metres and turned back: 180 degrees stays allowed.
_ROUNDING = 1e-9
#: Margin added to each ``$geoWithin`` radius (radians): the exact separation decides,
#: the database's own rounding must not drop a row on the boundary.
GEO_MARGIN_RAD = 1e-9

#: Per cone, ``(_id, distance_arcsec)`` of the documents inside it, nearest first.
Hits = list[list[tuple[Any, float]]]


@dataclass(frozen=True)
class Cone:
    """One search position: centre in degrees, radius (and inner radius) in arcsec."""

    ra: float
    dec: float
    radius_arcsec: float
    min_arcsec: float = 0.0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _metres_to_arcsec(metres: Any) -> float:
    return float(metres) / CLIENT_EARTH_RADIUS_M * ARCSEC_PER_RAD


def _check_near(lon: float, lat: float, max_m: Any, min_m: Any) -> None:
    """Refuse a near search off the sphere, or with a radius no cone search takes."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise BadRequest(
            "near search: $geometry coordinates must be [longitude, latitude] with "
            "longitude in [-180, 180] and latitude in [-90, 90] degrees"
        )
    for name, metres in (("$maxDistance", max_m), ("$minDistance", min_m)):
        if _number(metres) and metres < 0:
            raise BadRequest(f"near search: {name} must be non-negative")
    if _metres_to_arcsec(max_m) > MAX_RADIUS_ARCSEC * (1.0 + _ROUNDING):
        # As POST /queries/cone_search: 180 degrees already reach every point.
        raise BadRequest(
            f"near search: $maxDistance may be at most {_MAX_METRES:.0f} m (180 degrees)"
        )


def parse_near(query: dict[str, Any]) -> tuple[Cone, dict[str, Any]] | None:
    """Split a ``$nearSphere``/``$near`` find filter into its cone and the rest of the filter.

    Only the GeoJSON-point form with a positive ``$maxDistance`` (boom-client's) is
    taken; any other form returns None and goes to the database as written.

    Raises
    ------
    BadRequest
        For a point off the sphere, a negative distance or one past 180 degrees.
    """
    spec = query.get(GEOJSON_FIELD)
    if not isinstance(spec, dict) or len(spec) != 1:
        return None
    near = spec.get("$nearSphere", spec.get("$near"))
    if not isinstance(near, dict):
        return None
    geometry, max_m = near.get("$geometry"), near.get("$maxDistance")
    if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not _number(max_m):
        return None
    point = geometry.get("coordinates")
    if not isinstance(point, list) or len(point) != 2 or not all(map(_number, point)):
        return None
    lon, lat = float(point[0]), float(point[1])
    min_m = near.get("$minDistance")
    _check_near(lon, lat, max_m, min_m)
    if max_m == 0:
        # Only documents exactly at the point: no cone to cover, the database answers it.
        return None
    cone = Cone(
        ra=(lon + 180.0) % 360.0,
        dec=lat,
        radius_arcsec=min(_metres_to_arcsec(max_m), MAX_RADIUS_ARCSEC),
        min_arcsec=_metres_to_arcsec(min_m) if _number(min_m) else 0.0,
    )
    return cone, {k: v for k, v in query.items() if k != GEOJSON_FIELD}


def cone_hits(
    collection: Collection,
    cones: Sequence[Cone],
    pixel_index: tuple[str, int] | None,
    max_time_ms: int,
) -> Hits:
    """Return, per cone, the ids and distances of the documents inside it, nearest first.

    Parameters
    ----------
    collection
        Documents with ``coordinates.radec_geojson``.
    cones
        The search positions.
    pixel_index
        ``(field, order)`` of the collection's HEALPix pixels, or None.
    max_time_ms
        Time budget of the ``$geoWithin`` query (the pixel path uses the index).
    """
    if not cones:
        return []
    if pixel_index is None:
        hits = _geo_hits(collection, cones, max_time_ms)
    else:
        field, order = pixel_index
        ra = np.array([c.ra for c in cones])
        dec = np.array([c.dec for c in cones])
        radius = np.array([c.radius_arcsec for c in cones])
        found = cone_search(collection, ra, dec, radius, order=order, field=field, fields=["_id"])
        hits = [[(d["_id"], d["distance_arcsec"]) for d in docs] for docs in found]
    return [
        [(i, dist) for i, dist in inside if dist >= cone.min_arcsec]
        for cone, inside in zip(cones, hits, strict=True)
    ]


def _geo_hits(collection: Collection, cones: Sequence[Cone], max_time_ms: int) -> Hits:
    """Answer cones on a collection without pixels: one ``$or`` query, exact distances here."""
    within = [
        {
            GEOJSON_FIELD: {
                "$geoWithin": {
                    "$centerSphere": [
                        [c.ra - 180.0, c.dec],
                        c.radius_arcsec / ARCSEC_PER_RAD + GEO_MARGIN_RAD,
                    ]
                }
            }
        }
        for c in cones
    ]
    with user_query(max_time_ms):
        docs = list(collection.find({"$or": within}, {GEOJSON_FIELD: 1}, max_time_ms=max_time_ms))
    docs = [d for d in docs if isinstance(d.get("coordinates"), dict)]
    if not docs:
        return [[] for _ in cones]
    lonlat = np.array([d["coordinates"]["radec_geojson"]["coordinates"] for d in docs], dtype=float)
    row_ra, row_dec = ra_from_geojson(lonlat[:, 0]), lonlat[:, 1]
    hits: Hits = []
    for cone in cones:
        sep = angular_separation(cone.ra, cone.dec, row_ra, row_dec) * ARCSEC_PER_DEG
        inside = np.flatnonzero(sep <= cone.radius_arcsec)
        inside = inside[np.argsort(sep[inside], kind="stable")]
        hits.append([(docs[i]["_id"], float(sep[i])) for i in inside])
    return hits

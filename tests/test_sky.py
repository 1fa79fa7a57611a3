"""HEALPix covers, exact separations and batched cone searches, checked against astropy."""

from __future__ import annotations

import uuid

import astropy.units as u
import numpy as np
import pyarrow.parquet as pq
import pymongo
import pytest
from astropy.coordinates import SkyCoord

from boom_tasks.catalogs import LoadOptions, catalog_order, load_catalog
from boom_tasks.sky.cone import cone_search, match_pixels
from boom_tasks.sky.healpix import (
    DEFAULT_ORDER,
    cone_pixels,
    cones_pixels,
    order_for_radius,
    pixel_ids,
    pixel_size_arcsec,
)
from boom_tasks.sky.sphere import angular_separation
from tests.conftest import DATA

VSX = DATA / "catalogs" / "vsx.parquet"
#: VSX's first rows are sorted by declination from -89.86: a slice that crowds the pole.
VSX_SLICE = 5000
#: Synthetic sources on the awkward places of the sky: both poles and both sides of ra = 0.
EDGE_SOURCES = [
    (359.9999, 10.0),
    (0.0001, 10.0),
    (359.99999, -45.0),
    (0.00001, -45.0),
    (0.0, 89.9),
    (180.0, 89.9),
    (90.0, 89.95),
    (45.0, -89.9),
    (225.0, -89.9),
    (0.0, 90.0),
]


def _astropy_sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    a = SkyCoord(np.asarray(ra1) * u.deg, np.asarray(dec1) * u.deg)
    b = SkyCoord(np.asarray(ra2) * u.deg, np.asarray(dec2) * u.deg)
    return a.separation(b).to_value(u.arcsec)


def _points_in_cone(rng, ra, dec, radius_arcsec, n) -> tuple[np.ndarray, np.ndarray]:
    """Random points strictly inside a cone, by astropy's offset along random bearings."""
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    bearing = rng.uniform(0, 360, n) * u.deg
    distance = np.sqrt(rng.uniform(0, 1, n)) * radius_arcsec * (1 - 1e-9) * u.arcsec
    points = centre.directional_offset_by(bearing, distance)
    return points.ra.wrap_at(360 * u.deg).deg, points.dec.deg


# --- pure: geometry -----------------------------------------------------------------


def test_separation_equals_astropy_near_poles_and_across_ra_zero():
    # Given pairs at random, near the poles, across ra = 0/360, tiny and antipodal
    rng = np.random.default_rng(7)
    ra1, dec1 = rng.uniform(0, 360, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    ra2, dec2 = rng.uniform(0, 360, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    edges = np.array(
        [
            (359.9999, 10.0, 0.0001, 10.0),
            (0.0, 89.9, 180.0, 89.9),
            (12.0, 90.0, 300.0, 89.99999),
            (45.0, -89.9, 225.0, -89.9),
            (10.0, 20.0, 10.0 + 1e-9, 20.0),
            (10.0, 20.0, 190.0, -20.0),
        ]
    )
    ra1, dec1 = np.concatenate([ra1, edges[:, 0]]), np.concatenate([dec1, edges[:, 1]])
    ra2, dec2 = np.concatenate([ra2, edges[:, 2]]), np.concatenate([dec2, edges[:, 3]])
    # When separations are computed both ways
    ours = angular_separation(ra1, dec1, ra2, dec2) * 3600
    # Then they agree with astropy to a micro-arcsecond
    np.testing.assert_allclose(ours, _astropy_sep_arcsec(ra1, dec1, ra2, dec2), rtol=0, atol=1e-6)
    assert ours[-6] == pytest.approx(0.0002 * np.cos(np.radians(10)) * 3600, abs=1e-6)


@pytest.mark.parametrize("radius", [1.0, 2.0, 60.0, 300.0, 3600.0, 36000.0])
def test_every_point_inside_a_cone_falls_in_a_covering_pixel(radius):
    # Given cones at random and at the poles and ra = 0/360
    rng = np.random.default_rng(int(radius))
    centres = [(rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))) for _ in range(40)]
    centres += [(0.0, 90.0), (17.0, 89.9), (200.0, -89.9), (359.9999, 0.0), (0.0001, -30.0)]
    for ra, dec in centres:
        # When random points inside the cone are pixelised
        cover = cone_pixels(ra, dec, radius)
        pra, pdec = _points_in_cone(rng, ra, dec, radius, 500)
        # Then every point's pixel is in the cone's cover
        assert np.isin(pixel_ids(pra, pdec), cover).all(), (ra, dec, radius)


def test_pixel_ids_are_nested_and_in_range():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 10_000), rng.uniform(-90, 90, 10_000)
    fine, coarse = pixel_ids(ra, dec, 12), pixel_ids(ra, dec, 11)
    # A nested pixel's parent is its id divided by 4.
    assert (fine >> 2 == coarse).all()
    assert fine.min() >= 0 and fine.max() < 12 * 4**12
    assert pixel_ids(360.0, 0.0)[0] == pixel_ids(0.0, 0.0)[0]


def test_default_order_has_pixels_about_the_largest_match_radius():
    assert pixel_size_arcsec(DEFAULT_ORDER) == pytest.approx(206.1, abs=0.1)
    assert order_for_radius(200.0) == DEFAULT_ORDER
    assert order_for_radius(2.0) > DEFAULT_ORDER


def test_match_pixels_equals_brute_force_astropy():
    # Given rows scattered around a few cones, some across ra = 0 and at the pole
    rng = np.random.default_rng(11)
    cone_ra = np.array([0.0005, 359.9995, 10.0, 123.0, 250.0])
    cone_dec = np.array([5.0, 5.0, 89.99, -89.99, 30.0])
    radius = np.array([5.0, 5.0, 60.0, 60.0, 120.0])
    row_ra = np.mod(np.repeat(cone_ra, 400) + rng.normal(0, 0.02, 2000), 360)
    row_dec = np.clip(np.repeat(cone_dec, 400) + rng.normal(0, 0.02, 2000), -90, 90)
    # When they are matched through their pixels
    cover = cones_pixels(cone_ra, cone_dec, radius)
    pairs = match_pixels(
        cone_ra, cone_dec, radius, cover, row_ra, row_dec, pixel_ids(row_ra, row_dec)
    )
    # Then exactly the rows astropy puts inside each cone come back, nearest first
    for c in range(len(cone_ra)):
        sep = _astropy_sep_arcsec(cone_ra[c], cone_dec[c], row_ra, row_dec)
        expected = np.flatnonzero(sep <= radius[c])
        got = pairs.row[pairs.cone == c]
        assert sorted(got) == sorted(expected)
        dist = pairs.distance_arcsec[pairs.cone == c]
        np.testing.assert_allclose(dist, sep[got], rtol=0, atol=1e-6)
        assert (np.diff(dist) >= 0).all()


# --- real services: cone search on a loaded catalog ------------------------------------


@pytest.fixture(scope="module")
def sky_db(services, tmp_path_factory):
    """A database with the first VSX rows and the synthetic edge sources loaded."""
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    # A database of its own: other suites empty the shared test database as they run.
    name = f"{services.mongo.database}_sky_{uuid.uuid4().hex[:10]}"
    client.drop_database(name)
    db = client[name]
    load_catalog(db, "vsx", VSX, LoadOptions(limit=VSX_SLICE))
    edges = tmp_path_factory.mktemp("edges") / "edges.csv"
    edges.write_text(
        "name,ra,dec\n" + "".join(f"e{i},{r!r},{d!r}\n" for i, (r, d) in enumerate(EDGE_SOURCES))
    )
    load_catalog(db, "edges", edges)
    yield db
    client.drop_database(name)
    client.close()


def _check_against_astropy(coll, ra, dec, radius, results, rows_ra, rows_dec, ids):
    for c, matches in enumerate(results):
        sep = _astropy_sep_arcsec(ra[c], dec[c], rows_ra, rows_dec)
        inside = sep <= radius[c]
        assert sorted(m["_id"] for m in matches) == sorted(ids[inside].tolist()), (ra[c], dec[c])
        by_id = dict(zip(ids.tolist(), sep, strict=True))
        for m in matches:
            assert m["distance_arcsec"] == pytest.approx(by_id[m["_id"]], abs=1e-6)
        dist = [m["distance_arcsec"] for m in matches]
        assert dist == sorted(dist)


@pytest.mark.services
def test_cone_search_on_real_vsx_rows_equals_astropy(sky_db):
    # Given the first VSX rows (around the south pole) and cones near real sources
    source = pq.read_table(VSX).slice(0, VSX_SLICE)
    rows_ra, rows_dec = source["RAJ2000"].to_numpy(), source["DEJ2000"].to_numpy()
    rng = np.random.default_rng(5)
    pick = rng.choice(VSX_SLICE, 60, replace=False)
    ra = np.mod(rows_ra[pick] + rng.normal(0, 0.01, 60), 360)
    dec = np.clip(rows_dec[pick] + rng.normal(0, 0.005, 60), -90, 90)
    ra, dec = np.append(ra, [0.0, 359.99]), np.append(dec, [-90.0, -89.5])
    radius = np.append(rng.choice([2.0, 30.0, 300.0, 1800.0], 60), [1800.0, 600.0])
    # When all cones are searched at once
    order = catalog_order(sky_db, "vsx")
    results = cone_search(sky_db["vsx"], ra, dec, radius, order=order)
    # Then each cone holds exactly astropy's matches, nearest first, with its distances
    assert sum(map(len, results)) > 60
    ids = np.arange(VSX_SLICE)
    _check_against_astropy(sky_db["vsx"], ra, dec, radius, results, rows_ra, rows_dec, ids)
    assert {"RAJ2000", "DEJ2000", "VType", "hpx", "distance_arcsec"} <= set(results[0][0])


@pytest.mark.services
def test_cone_search_finds_matches_across_ra_zero_and_around_the_poles(sky_db):
    # Given synthetic sources at ra 359.9999/0.0001 and dec +-89.9
    rows_ra, rows_dec = np.array(EDGE_SOURCES).T
    ra = np.array([359.99995, 0.00005, 0.0, 0.0, 300.0, 0.0, 170.0])
    dec = np.array([10.0, 10.0, -45.0, 90.0, 89.9, -90.0, 89.9])
    radius = np.array([1.0, 1.0, 0.1, 400.0, 720.0, 400.0, 90.0])
    # When they are cone-searched from both sides of ra = 0 and from the poles
    results = cone_search(sky_db["edges"], ra, dec, radius, fields=["name"])
    # Then matches on the other side of ra = 0 and of the pole are found
    names = [[m["name"] for m in r] for r in results]
    assert sorted(names[0]) == sorted(names[1]) == ["e0", "e1"]
    assert sorted(names[2]) == ["e2", "e3"]
    assert sorted(names[3]) == ["e4", "e5", "e6", "e9"]
    assert sorted(names[5]) == ["e7", "e8"]
    ids = np.arange(len(EDGE_SOURCES))
    _check_against_astropy(sky_db["edges"], ra, dec, radius, results, rows_ra, rows_dec, ids)
    assert set(results[0][0]) == {"_id", "name", "coordinates", "hpx", "distance_arcsec"}


@pytest.mark.services
def test_cone_search_with_no_cones_or_no_rows(sky_db):
    assert cone_search(sky_db["vsx"], [], [], 2.0) == []
    assert cone_search(sky_db["vsx"], [10.0], [60.0], 2.0) == [[]]

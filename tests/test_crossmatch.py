"""Crossmatch: pure matching against astropy, then the stage on real catalogs and alerts."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord

from boom_tasks.alert.base import radec_geojson
from boom_tasks.catalogs.loader import LoadOptions, load_catalog
from boom_tasks.cli import main as boom_main
from boom_tasks.crossmatch.config import CrossmatchCatalog
from boom_tasks.crossmatch.match import RAD_PER_ARCSEC, distance_radii, match_rows
from boom_tasks.crossmatch.reprocess import reprocess
from boom_tasks.crossmatch.stage import crossmatch_batch, plan_catalogs
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.settings import get_settings
from boom_tasks.sky.healpix import HPX_FIELD, cones_pixels, pixel_ids
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.conftest import DATA

CATALOGS = DATA / "catalogs"

#: The configured ZTF catalogs (config/test.yaml keeps the defaults).
SPECS = {s.catalog: s for s in get_settings().crossmatch["ZTF"]}


def _sep_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    a = SkyCoord(np.asarray(ra1) * u.deg, np.asarray(dec1) * u.deg)
    b = SkyCoord(np.asarray(ra2) * u.deg, np.asarray(dec2) * u.deg)
    return a.separation(b).to_value(u.arcsec)


def _rows(ra, dec, order=10, **columns) -> list[dict]:
    pix = pixel_ids(ra, dec, order)
    rows = []
    for i, (r, d) in enumerate(zip(ra, dec, strict=True)):
        row = {"_id": i, "coordinates": {"radec_geojson": radec_geojson(r, d)}, HPX_FIELD: pix[i]}
        row.update({k: v[i] for k, v in columns.items()})
        rows.append(row)
    return rows


# --- pure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "centre", [(359.9999, 10.0), (0.0001, -30.0), (20.0, 89.9), (200.0, -89.9)]
)
def test_matches_equal_astropy_near_poles_and_across_ra_zero(centre):
    # Given rows scattered around an awkward position (pole, ra = 0/360)
    rng = np.random.default_rng(7)
    c = SkyCoord(centre[0] * u.deg, centre[1] * u.deg)
    pts = c.directional_offset_by(
        rng.uniform(0, 360, 400) * u.deg, rng.uniform(0, 8, 400) * u.arcsec
    )
    ra, dec = pts.ra.wrap_at(360 * u.deg).deg, pts.dec.deg
    rows = _rows(ra, dec, VType=[f"v{i}" for i in range(len(ra))])
    spec = CrossmatchCatalog(catalog="t", radius=4.0, projection={"VType": 1})
    cra, cdec = np.array([centre[0]]), np.array([centre[1]])
    # When they are matched within 4 arcsec
    (matches,) = match_rows(spec, cra, cdec, cones_pixels(cra, cdec, 4.0, 10), rows)
    # Then exactly astropy's rows within 4", sorted by distance, with its distances
    sep = _sep_arcsec(centre[0], centre[1], ra, dec)
    expected = sorted(np.flatnonzero(sep <= 4.0), key=lambda i: sep[i])
    assert [m["_id"] for m in matches] == expected
    assert np.allclose([m["distance_arcsec"] for m in matches], sep[expected], atol=1e-6)
    assert set(matches[0]) == {"_id", "VType", "distance_arcsec"}


def test_max_results_keeps_the_nearest():
    ra = np.array([10.0, 10.0003, 10.0001, 10.0002])
    dec = np.full(4, 5.0)
    spec = CrossmatchCatalog(catalog="t", radius=5.0, max_results=2)
    cra, cdec = np.array([10.0]), np.array([5.0])
    (matches,) = match_rows(spec, cra, cdec, cones_pixels(cra, cdec, 5.0, 10), _rows(ra, dec))
    assert [m["_id"] for m in matches] == [0, 2]
    assert HPX_FIELD not in matches[0]


def test_distance_mode_radius_shrinks_with_distance_and_is_capped_near():
    # Given galaxies at 1, 10, 100 and 1000 Mpc, and one without a distance
    spec = SPECS["mangrove"]
    rows = [{"ang_dist": d} for d in (1.0, 10.0, 100.0, 1000.0)] + [{}]
    radii = distance_radii(spec, rows)
    # Then the radius spans distance_max kpc at the galaxy's distance, capped at distance_max_near
    kpc_per_arcsec = np.array([1.0, 10.0, 100.0, 1000.0]) * 1000 * RAD_PER_ARCSEC
    expected = np.minimum(spec.distance_max / kpc_per_arcsec, spec.distance_max_near)
    assert np.allclose(radii[:4], expected)
    assert radii[0] == spec.distance_max_near  # 1 Mpc: 6188" capped to 300"
    assert np.isnan(radii[4])


def test_distance_mode_keeps_only_galaxies_within_their_radius_and_reports_kpc():
    # Given two galaxies 20" from the alert: one at 100 Mpc (radius 61.9"), one at 1000 Mpc (6.2")
    centre = SkyCoord(150.0 * u.deg, 2.0 * u.deg)
    pts = centre.directional_offset_by([0, 90] * u.deg, [20, 20] * u.arcsec)
    rows = _rows(pts.ra.deg, pts.dec.deg, ang_dist=[100.0, 1000.0], HyperLEDA_name=["A", "B"])
    spec = SPECS["mangrove"]
    cra, cdec = np.array([150.0]), np.array([2.0])
    (matches,) = match_rows(spec, cra, cdec, cones_pixels(cra, cdec, spec.radius, 10), rows)
    # Then only the nearer galaxy matches, 20" = 9.70 kpc at 100 Mpc
    assert [m["HyperLEDA_name"] for m in matches] == ["A"]
    assert matches[0]["distance_kpc"] == pytest.approx(20 * 100_000 * RAD_PER_ARCSEC, rel=1e-6)


def test_distance_mode_needs_its_keys():
    with pytest.raises(ValueError, match="distance_key"):
        CrossmatchCatalog(catalog="g", radius=300, use_distance=True, distance_max=30)


# --- real services: real catalog slices and real alerts --------------------------------


def _alert_packets() -> list[bytes]:
    paths = packet_paths("fink-20181129") + packet_paths("kowalski") + packet_paths("boom-402")
    return [read_packet(p) for p in paths]


def _near(ra, dec, alerts: SkyCoord, within_arcsec: float) -> np.ndarray:
    """Indices of rows within ``within_arcsec`` of any alert (declination band, then astropy)."""
    order = np.argsort(dec)
    sorted_dec = dec[order]
    band = within_arcsec / 3600
    near = []
    for a_ra, a_dec in zip(alerts.ra.deg, alerts.dec.deg, strict=True):
        lo, hi = np.searchsorted(sorted_dec, [a_dec - band, a_dec + band])
        idx = order[lo:hi]
        near.append(idx[_sep_arcsec(a_ra, a_dec, ra[idx], dec[idx]) <= within_arcsec])
    return np.unique(np.concatenate(near))


def _slice(path, ra_col, dec_col, alerts: SkyCoord, within_arcsec: float, extra: int, seed: int):
    """Real rows near the alerts (so there are matches) plus a random sample of the rest."""
    table = pq.read_table(path)
    ra = np.asarray(table[ra_col].to_numpy(zero_copy_only=False), dtype=float)
    dec = np.asarray(table[dec_col].to_numpy(zero_copy_only=False), dtype=float)
    ok = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    near = ok[_near(ra[ok], dec[ok], alerts, within_arcsec)]
    rng = np.random.default_rng(seed)
    pick = np.union1d(near, rng.choice(ok, extra, replace=False))
    return table.take(pa.array(pick))


@pytest.fixture(scope="module")
def xm_db(services, tmp_path_factory):
    """Real alerts ingested, and slices of VSX, GCVS and Mangrove loaded around them."""
    import pymongo

    db = pymongo.MongoClient(services.mongo.uri)[f"{services.mongo.database}_xmatch"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    packets = _alert_packets()
    result = ingest_packets(db, ZTF, packets, "xm")
    aux = list(db[ZTF.aux].find({}, {"coordinates": 1}))
    lon, lat = np.array([d["coordinates"]["radec_geojson"]["coordinates"] for d in aux]).T
    alerts = SkyCoord((lon + 180) * u.deg, lat * u.deg)
    folder = tmp_path_factory.mktemp("catalogs")
    for name, file, ra, dec, within in [
        ("vsx", "vsx.parquet", "RAJ2000", "DEJ2000", 30),
        ("gcvs", "gcvs.parquet", "ra", "dec", 30),
        ("mangrove", "mangrove_filtered.parquet", "ra", "dec", 600),
    ]:
        part = folder / f"{name}.parquet"
        pq.write_table(_slice(CATALOGS / file, ra, dec, alerts, within, 1000, 1), part)
        load_catalog(db, name, part, LoadOptions(replace=True))
    yield db, result.candids
    db.client.drop_database(db.name)


def _reference(db, spec: CrossmatchCatalog):
    """Return f(ra, dec) -> expected matches: astropy over every row of the catalog slice."""
    docs = list(db[spec.catalog].find())
    lon, lat = np.array([d["coordinates"]["radec_geojson"]["coordinates"] for d in docs]).T
    rows = SkyCoord(((lon + 180) % 360) * u.deg, lat * u.deg)
    if spec.use_distance:
        dist = np.array([d.get(spec.distance_key, np.nan) for d in docs], dtype=float)
        radius = np.minimum(
            spec.distance_max / (dist * 1000 * RAD_PER_ARCSEC), spec.distance_max_near
        )
    else:
        radius = np.full(len(docs), spec.radius)
    radius = np.minimum(radius, spec.radius)

    def expected(ra: float, dec: float) -> list:
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(rows).to_value(u.arcsec)
        keep = np.flatnonzero(sep <= radius)
        return [(docs[i]["_id"], sep[i]) for i in sorted(keep, key=lambda i: sep[i])]

    return expected


def test_new_objects_are_matched_once_against_real_catalogs_as_astropy_says(xm_db):
    db, candids = xm_db
    plans, problems = plan_catalogs(db, list(SPECS.values()))
    assert problems == [] and len(plans) == 3
    # When the batch's new objects are crossmatched
    assert crossmatch_batch(db, ZTF, plans, candids) == db[ZTF.aux].count_documents({})
    # Then every object's matches equal the astropy brute force over the whole slice
    found = dict.fromkeys(SPECS, 0)
    reference = {name: _reference(db, spec) for name, spec in SPECS.items()}
    for aux in db[ZTF.aux].find({}, {"coordinates": 1, "cross_matches": 1}):
        lon, dec = aux["coordinates"]["radec_geojson"]["coordinates"]
        for name in SPECS:
            got = aux["cross_matches"][name]
            want = reference[name](lon + 180, dec)
            assert [m["_id"] for m in got] == [i for i, _ in want], (aux["_id"], name)
            assert np.allclose([m["distance_arcsec"] for m in got], [s for _, s in want], atol=1e-6)
            found[name] += bool(got)
    # And real alerts do have real matches (the test is not vacuous)
    assert all(n > 0 for n in found.values()), found
    # And a second pass (a redelivered batch) changes nothing
    assert crossmatch_batch(db, ZTF, plans, candids) == 0


def test_matches_agree_with_geowithin_on_the_real_catalog(xm_db):
    db, _ = xm_db
    for aux in db[ZTF.aux].find({"cross_matches.vsx.0": {"$exists": True}}).limit(5):
        geo = aux["coordinates"]["radec_geojson"]["coordinates"]
        query = {"$geoWithin": {"$centerSphere": [geo, SPECS["vsx"].radius * RAD_PER_ARCSEC]}}
        ids = {d["_id"] for d in db["vsx"].find({"coordinates.radec_geojson": query}, {"_id": 1})}
        assert ids == {m["_id"] for m in aux["cross_matches"]["vsx"]}


def test_reprocess_recomputes_one_catalog_for_existing_objects(xm_db, monkeypatch):
    db, candids = xm_db
    crossmatch_batch(db, ZTF, plan_catalogs(db, list(SPECS.values()))[0], candids)
    before = {d["_id"]: d["cross_matches"] for d in db[ZTF.aux].find({}, {"cross_matches": 1})}
    # Given gcvs matches lost (as if gcvs had been added after the objects were matched)
    db[ZTF.aux].update_many({}, {"$unset": {"cross_matches.gcvs": ""}})
    # When `boom crossmatch reprocess --catalog gcvs` runs
    monkeypatch.setenv("BOOM_MONGO__DATABASE", db.name)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as done:
            boom_main(["crossmatch", "reprocess", "ZTF", "--catalog", "gcvs"])
    finally:
        get_settings.cache_clear()
    assert done.value.code == 0
    # Then every object has its gcvs matches back, and the other catalogs are untouched
    after = {d["_id"]: d["cross_matches"] for d in db[ZTF.aux].find({}, {"cross_matches": 1})}
    assert after == before


def test_a_catalog_not_loaded_is_skipped_with_its_reason(xm_db):
    db, _ = xm_db
    spec = CrossmatchCatalog(catalog="not_loaded_yet", radius=2.0)
    plans, problems = plan_catalogs(db, [spec, SPECS["gcvs"]])
    assert [p.spec.catalog for p in plans] == ["gcvs"]
    assert problems == ["not_loaded_yet: not loaded (boom catalogs load not_loaded_yet FILE)"]
    report = reprocess(db, ZTF, [spec])
    assert report.objects == 0 and report.problems == problems

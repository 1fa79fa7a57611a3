"""The catalog loader: parsing, real catalogs into the real MongoDB server, ``boom catalogs``."""

from __future__ import annotations

import argparse
import io
import math

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from boom_tasks.catalogs import CatalogError, CoordinateError, LoadOptions, load_catalog
from boom_tasks.catalogs.cli import register, run
from boom_tasks.catalogs.coords import detect_columns, parse_angle, to_degrees
from boom_tasks.catalogs.documents import ABSENT, field_names, plain
from boom_tasks.catalogs.meta import META_COLLECTION
from boom_tasks.catalogs.readers import open_catalog
from boom_tasks.sky.healpix import pixel_ids
from tests.conftest import DATA

CATALOGS = DATA / "catalogs"
VSX, HSP = CATALOGS / "vsx.parquet", CATALOGS / "3hsp.csv"
#: A fixed slice of VSX: enough rows for several batches, fast enough for the suite.
VSX_SLICE = 5000


# --- pure: coordinates, field names, values -------------------------------------------


@pytest.mark.parametrize(
    ("value", "axis", "degrees"),
    [
        ("12 34 56.7", "ra", 15 * (12 + 34 / 60 + 56.7 / 3600)),
        ("12:34:56.7", "ra", 15 * (12 + 34 / 60 + 56.7 / 3600)),
        ("12h34m56.7s", "ra", 15 * (12 + 34 / 60 + 56.7 / 3600)),
        (" 00 01 16.37 ", "ra", 15 * (1 / 60 + 16.37 / 3600)),
        ("+12 34 56", "dec", 12 + 34 / 60 + 56 / 3600),
        ("-41 55 24.99", "dec", -(41 + 55 / 60 + 24.99 / 3600)),
        ("-00 30 00", "dec", -0.5),
        ("12d30m", "ra", 12.5),
        ("123.456", "ra", 123.456),
        (-12.5, "dec", -12.5),
        (np.float32(10.5), "ra", 10.5),
    ],
)
def test_angles_in_degrees_or_sexagesimal(value, axis, degrees):
    assert parse_angle(value, axis) == pytest.approx(degrees, abs=1e-12)


@pytest.mark.parametrize(
    ("value", "axis", "why"),
    [
        ("12 61 00", "ra", "below 60"),
        ("25 00 00", "ra", "[0, 24)"),
        ("-01 00 00", "ra", "[0, 24)"),
        ("12.5 30", "dec", "last sexagesimal field"),
        ("north", "dec", "sexagesimal"),
        ("", "dec", "missing"),
        (None, "ra", "missing"),
    ],
)
def test_bad_angles_say_why(value, axis, why):
    with pytest.raises(ValueError, match=__import__("re").escape(why)):
        parse_angle(value, axis)


def test_positions_are_validated_naming_the_row():
    ra, _ = to_degrees(["00 00 00", 360.0, "23:59:59.9"], [0.0, "-89 59 59", "+90"])
    np.testing.assert_allclose(ra, [0.0, 0.0, 359.99958333333336])
    with pytest.raises(CoordinateError, match=r"row 41: cannot read dec 'x' in column 'DE'"):
        to_degrees([1.0, 2.0], [3.0, "x"], first_row=40, columns=("RA", "DE"))
    with pytest.raises(CoordinateError, match=r"row 7: .* is dec outside \[-90, 90\]"):
        to_degrees([1.0], [90.5], first_row=7)
    with pytest.raises(CoordinateError, match=r"row 1: .* is missing or not finite"):
        to_degrees([1.0, None], [2.0, 3.0])


def test_ra_dec_columns_are_detected_by_their_usual_names():
    assert detect_columns(["RAJ2000", "DEJ2000", "VType"]) == ("RAJ2000", "DEJ2000")
    assert detect_columns(["id", "R.A.", "Dec"]) == ("R.A.", "Dec")
    assert detect_columns(["HyperLEDA_name", "ra", "dec"]) == ("ra", "dec")
    assert detect_columns(["RA_ICRS", "DE_ICRS"]) == ("RA_ICRS", "DE_ICRS")
    assert detect_columns(["x", "y"], ra="x", dec="y") == ("x", "y")
    with pytest.raises(CatalogError, match=r"--ra COLUMN; the columns are: \['lon', 'lat'\]"):
        detect_columns(["lon", "lat"])
    with pytest.raises(CatalogError, match=r"no dec column 'DE'; the columns are"):
        detect_columns(["ra", "dec"], dec="DE")


def test_field_names_are_queryable_and_distinct():
    names = field_names(["R.A.", "X-ray flux d. @ 1keV", "_id", "hpx", "a", " a ", "$b"])
    assert list(names.values()) == [
        "RA",
        "X-ray flux d @ 1keV",
        "_id_col",
        "hpx_col",
        "a",
        "a_2",
        "b",
    ]


def test_values_become_plain_python_and_missing_ones_absent():
    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert type(plain(np.float32(1.5))) is float
    assert plain(np.array([1, 2])) == [1, 2]
    assert plain("SNI       ") == "SNI"
    for missing in (None, float("nan"), np.float64("nan"), "", "   ", "None", "nan"):
        assert plain(missing) is ABSENT
    assert plain([1.0, float("nan")]) == [1.0, None]


def test_file_errors_are_clear(tmp_path):
    with pytest.raises(CatalogError, match="catalog file not found"):
        open_catalog(tmp_path / "nope.parquet")
    with pytest.raises(CatalogError, match="is a folder: give one catalog file"):
        open_catalog(tmp_path)
    (tmp_path / "cat.xyz").write_text("ra,dec\n1,2\n")
    with pytest.raises(CatalogError, match=r"give it with --format \(parquet\|csv\|fits\)"):
        open_catalog(tmp_path / "cat.xyz")
    with pytest.raises(CatalogError, match="unknown catalog format 'votable'"):
        open_catalog(tmp_path / "cat.xyz", "votable")
    assert open_catalog(tmp_path / "cat.xyz", "csv").columns == ["ra", "dec"]
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(CatalogError, match=r"cannot read .*bad\.parquet as parquet"):
        open_catalog(tmp_path / "bad.parquet")


def test_the_messy_3hsp_csv_reads_cell_by_cell():
    reader = open_catalog(HSP)
    assert reader.num_rows == 2013 and reader.columns[3:5] == ["R.A.", "Dec"]
    row = {k: v[2] for k, v in next(reader.batches(5)).columns.items()}
    assert row["3HSP Source name"] == "3HSPJ000132.7-415525"
    assert row["R.A."] == "00 01 32.74" and row["Dec"] == "-41 55 24.99"
    assert row["id"] == 3 and row["FOM"] == 0.79 and row["BZcat name"] is None
    assert row["\u03b3-ray counterpart"] == "4FGL J0001.6-4156"


# --- real services ----------------------------------------------------------------------


def _docs(coll) -> list[dict]:
    return sorted(coll.find(), key=lambda d: str(d["_id"]))


@pytest.fixture
def vsx(catalog_db):
    """The first VSX rows, loaded."""
    report = load_catalog(catalog_db, "vsx", VSX, LoadOptions(limit=VSX_SLICE, batch_size=2000))
    return catalog_db, report


@pytest.mark.services
def test_a_vsx_slice_is_stored_field_by_field(vsx):
    # Given the first rows of VSX loaded in batches of 2000
    db, report = vsx
    source = pq.read_table(VSX).slice(0, VSX_SLICE).to_pylist()
    # Then every row is a document with its columns, position and pixel
    assert (report.rows, report.inserted, report.complete) == (VSX_SLICE, VSX_SLICE, False)
    docs = {d["_id"]: d for d in db["vsx"].find()}
    assert sorted(docs) == list(range(VSX_SLICE))
    ra = np.array([r["RAJ2000"] for r in source])
    dec = np.array([r["DEJ2000"] for r in source])
    hpx = pixel_ids(ra, dec)
    for i, row in enumerate(source):
        doc = docs[i]
        assert (doc["RAJ2000"], doc["DEJ2000"], doc["VType"]) == (
            row["RAJ2000"],
            row["DEJ2000"],
            row["VType"].strip(),
        )
        assert doc["coordinates"]["radec_geojson"] == {
            "type": "Point",
            "coordinates": [row["RAJ2000"] - 180.0, row["DEJ2000"]],
        }
        assert doc["hpx"] == hpx[i]
    # And the catalog is described in catalogs_meta and indexed
    meta = db[META_COLLECTION].find_one({"_id": "vsx"})
    assert meta["ra_column"] == "RAJ2000" and meta["dec_column"] == "DEJ2000"
    assert (meta["hpx_order"], meta["rows_loaded"], meta["rows_in_file"]) == (10, 5000, 1933544)
    assert meta["status"] == "partial" and meta["source"]["path"] == str(VSX)
    assert {"hpx_1", "coordinates.radec_geojson_2dsphere"} <= set(db["vsx"].index_information())


@pytest.mark.services
def test_loading_again_changes_nothing_and_an_interrupted_load_resumes(vsx):
    # Given a loaded slice
    db, _ = vsx
    before = _docs(db["vsx"])
    # When the same load runs again, it skips every row
    again = load_catalog(db, "vsx", VSX, LoadOptions(limit=VSX_SLICE))
    assert (again.resumed_from, again.rows_read, again.rows) == (VSX_SLICE, 0, VSX_SLICE)
    # When a load died after writing rows 0-3199 but checkpointing only 1000
    db["vsx"].delete_many({"_id": {"$gte": 3200}})
    db[META_COLLECTION].update_one({"_id": "vsx"}, {"$set": {"rows_loaded": 1000}})
    resumed = load_catalog(db, "vsx", VSX, LoadOptions(limit=VSX_SLICE))
    # Then it resumes at the checkpoint, finds 2200 rows already there, and adds the rest
    assert (resumed.resumed_from, resumed.rows_read, resumed.inserted) == (1000, 4000, 1800)
    assert _docs(db["vsx"]) == before


@pytest.mark.services
def test_a_different_load_under_the_same_name_is_refused_unless_replaced(catalog_db):
    db = catalog_db
    load_catalog(db, "vsx", VSX, LoadOptions(limit=200))
    with pytest.raises(CatalogError, match=r"was loaded from .*vsx.parquet.*--replace"):
        load_catalog(db, "vsx", VSX, LoadOptions(limit=10, order=8))
    report = load_catalog(db, "vsx", VSX, LoadOptions(limit=10, order=8, replace=True))
    assert report.rows == 10 and db["vsx"].find_one({"_id": 0})["hpx"] == pixel_ids(
        256.31725, -89.86216999999999, 8
    )
    db["someone_elses"].insert_one({"_id": 1})
    with pytest.raises(CatalogError, match="exists and is not a catalog loaded by boom"):
        load_catalog(db, "someone_elses", VSX, LoadOptions(limit=10))


def _boom_catalogs(*argv: str) -> str:
    parser = argparse.ArgumentParser(prog="boom")
    register(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    assert run(parser.parse_args(["catalogs", *argv]), out) == 0
    return out.getvalue()


@pytest.mark.services
def test_the_whole_3hsp_csv_loads_with_sexagesimal_positions_and_is_listed(catalog_db):
    # Given the messy 3HSP CSV, loaded with `boom catalogs load` using its id column
    out = _boom_catalogs("load", "3hsp", str(HSP), "--id", "id", "--batch-size", "500")
    assert "2013 rows read (2013 new" in out and "complete" in out
    # Then every position equals astropy's reading of the sexagesimal strings
    docs = {d["_id"]: d for d in catalog_db["3hsp"].find()}
    rows = next(open_catalog(HSP).batches(5000)).columns
    expected = SkyCoord(rows["R.A."], rows["Dec"], unit=(u.hourangle, u.deg))
    assert len(docs) == 2013
    for i, row_id in enumerate(rows["id"]):
        lon, lat = docs[row_id]["coordinates"]["radec_geojson"]["coordinates"]
        assert lon + 180 == pytest.approx(expected[i].ra.deg, abs=1e-9)
        assert lat == pytest.approx(expected[i].dec.deg, abs=1e-9)
    # And empty cells are absent, strings are kept, numbers are numbers
    first = docs[1]
    assert first["RA"] == "00 01 16.37" and first["Log(peak flux)"] == "-12.9?"
    assert "BZcat name" not in first and "X-ray flux d @ 1keV (μJy)" not in first
    assert first["NVSS/FIRSTflux density(mJy)"] == 4 and first["FOM"] == 0.05
    # And `boom catalogs list` shows it with its rows and indexes
    listing = _boom_catalogs("list")
    line = next(ln for ln in listing.splitlines() if ln.startswith("3hsp"))
    assert "2013" in line and "complete" in line
    assert "hpx_1" in line and "coordinates.radec_geojson_2dsphere" in line


@pytest.mark.services
def test_nan_none_and_numpy_types_from_parquet_and_fits(catalog_db, tmp_path):
    # Given the same small table as Parquet and as FITS, with NaN, null and padded values
    table = {
        "ra": [10.0, 20.0, 30.0],
        "dec": [-5.0, 0.0, 5.0],
        "mag": [12.5, float("nan"), 14.0],
        "name": ["a  ", "", "None"],
        "n": [1, 2, 3],
    }
    pq.write_table(pa.table(table), tmp_path / "t.parquet")
    Table(table).write(tmp_path / "t.fits")
    for fmt in ("parquet", "fits"):
        load_catalog(catalog_db, fmt, tmp_path / f"t.{fmt}")
        docs = _docs(catalog_db[fmt])
        # Then missing values are absent and the rest are plain Python values
        assert [set(d) - {"_id", "coordinates", "hpx"} for d in docs] == [
            {"ra", "dec", "mag", "name", "n"},
            {"ra", "dec", "n"},
            {"ra", "dec", "mag", "n"},
        ], fmt
        assert docs[0]["name"] == "a" and docs[2]["mag"] == 14.0 and docs[1]["n"] == 2
        assert isinstance(docs[0]["n"], int) and not math.isnan(docs[2]["mag"])


@pytest.mark.services
def test_unparsable_and_missing_positions_name_the_row(catalog_db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('name, RAJ2000, DEJ2000\n"a", "12:00:00", "+10 00 00"\n"b", "12:00:00", "ten"\n')
    with pytest.raises(CoordinateError, match=r"row 1: cannot read dec 'ten' in column 'DEJ2000'"):
        load_catalog(catalog_db, "bad", bad)
    with pytest.raises(CatalogError, match=r"cannot find the ra column .* \['name', 'x', 'y'\]"):
        (tmp_path / "nopos.csv").write_text("name,x,y\na,1,2\n")
        load_catalog(catalog_db, "nopos", tmp_path / "nopos.csv")
    missing = tmp_path / "missing.csv"
    missing.write_text("ra,dec\n1,2\n,3\n")
    with pytest.raises(CoordinateError, match=r"row 1: position ra=None dec=3 is missing"):
        load_catalog(catalog_db, "missing", missing)
    with pytest.raises(CatalogError, match="invalid catalog name"):
        load_catalog(catalog_db, "a$b", missing)

"""What ``boom catalogs load`` refuses: the broker's collections, repeated columns and ids.

Every refusal must happen before anything is written or dropped, and reach the
user as one ``boom: error:`` line with a non-zero exit.
"""

from __future__ import annotations

import pytest

from boom_tasks.catalogs import CatalogError, LoadOptions, load_catalog
from boom_tasks.catalogs.meta import META_COLLECTION
from boom_tasks.catalogs.readers import open_catalog
from boom_tasks.cli import main as boom_main
from boom_tasks.crossmatch.config import CrossmatchCatalog
from boom_tasks.crossmatch.stage import plan_catalogs
from boom_tasks.entry import EXIT_ERROR
from boom_tasks.settings import get_settings
from boom_tasks.surveys import SURVEYS

#: Every collection of every registered survey, by the Survey's own properties.
SURVEY_COLLECTIONS = sorted(
    getattr(s, prop)
    for s in SURVEYS.values()
    for prop in ("alerts", "aux", "cutouts", "quarantine", "filter_passes", "publications")
)
#: The broker's collections that belong to no survey (default names).
BROKER_COLLECTIONS = [
    "filters",
    "users",
    "catalogs_meta",
    "replays",
    "replay_publications",
    "science_actors",
    "schedule_jobs",
    "schedule_runs",
    "ZTF_nights",
    "LSST_science_figures",
]


def _boom_fails(capsys, *argv: str) -> str:
    """Run ``boom catalogs ARGV``; check it exits with an error; return its error line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        boom_main(["catalogs", *argv])
    assert done.value.code == EXIT_ERROR
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("boom: error:")]
    assert len(lines) == 1
    return lines[0]


def _csv(tmp_path, text: str, name: str = "c.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the broker's own collections ----------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("name", SURVEY_COLLECTIONS + BROKER_COLLECTIONS)
def test_a_broker_collection_is_never_loaded_into_nor_dropped(catalog_db, tmp_path, name, capsys):
    # Given one of the broker's collections holding its own document
    db = catalog_db
    db[name].insert_one({"_id": "broker's own"})
    csv = _csv(tmp_path, "ra,dec\n1,2\n")
    # When a catalog is loaded under its name, with --replace
    error = _boom_fails(capsys, "load", name, str(csv), "--replace")
    # Then the load is refused, naming the collection, and nothing changed
    assert repr(name) in error and "broker's" in error
    assert list(db[name].find()) == [{"_id": "broker's own"}]
    assert db[META_COLLECTION].find_one({"_id": name}) is None


@pytest.mark.services
def test_a_survey_prefixed_name_is_refused_even_before_the_collection_exists(catalog_db, tmp_path):
    # Given a name of the ZTF collections' form that the broker has not created yet
    csv = _csv(tmp_path, "ra,dec\n1,2\n")
    # When a catalog is loaded under it
    with pytest.raises(CatalogError, match=r"starts with 'ZTF_'"):
        load_catalog(catalog_db, "ZTF_alerts_new_kind", csv)
    # Then nothing was written
    assert catalog_db.list_collection_names() == []


@pytest.mark.services
def test_configured_broker_collection_names_are_refused(catalog_db, tmp_path):
    # Given settings that rename the replay runs' collection
    base = get_settings()
    replays = base.replays.model_copy(update={"collection": "my_replays"})
    settings = base.model_copy(update={"replays": replays})
    # When a catalog takes that name
    with pytest.raises(CatalogError, match="one of the broker's own collections"):
        load_catalog(catalog_db, "my_replays", _csv(tmp_path, "ra,dec\n1,2\n"), settings=settings)
    # Then nothing was written
    assert catalog_db.list_collection_names() == []


@pytest.mark.services
@pytest.mark.parametrize("replace", [False, True])
def test_an_existing_collection_that_is_not_a_catalog_is_left_alone(
    catalog_db, tmp_path, replace, capsys
):
    # Given someone else's collections: one with a document, one empty but indexed
    db = catalog_db
    db["notes"].insert_one({"_id": 1, "text": "keep me"})
    db["empty"].create_index("x")
    csv = _csv(tmp_path, "ra,dec\n1,2\n")
    for name in ("notes", "empty"):
        # When a catalog is loaded under its name (with and without --replace)
        argv = ["load", name, str(csv)] + (["--replace"] if replace else [])
        error = _boom_fails(capsys, *argv)
        # Then it is refused and the collection is untouched, with no meta entry
        assert f"collection {name!r} exists and is not a catalog" in error
        assert db[META_COLLECTION].find_one({"_id": name}) is None
    assert list(db["notes"].find()) == [{"_id": 1, "text": "keep me"}]
    assert "x_1" in db["empty"].index_information()
    # While a catalog boom loaded can still be resumed, or replaced by another file
    first = _csv(tmp_path, "ra,dec\n3,4\n5,6\n", "first.csv")
    load_catalog(db, "mine", first)
    report = load_catalog(db, "mine", csv if replace else first, LoadOptions(replace=replace))
    assert report.rows == (1 if replace else 2)
    assert db["mine"].find_one({"_id": 0})["ra"] == (1 if replace else 3)


# --- repeated columns -----------------------------------------------------------------


def test_a_header_that_repeats_a_column_is_refused(tmp_path):
    # Given CSV headers repeating 'ra' (once after stripping spaces) and 'dec'
    for header in ("ra,dec,ra", "ra,dec, ra ,dec"):
        csv = _csv(tmp_path, f"{header}\n" + ",".join("1" * len(header.split(","))) + "\n")
        # When the file is opened, Then it is refused naming the repeated columns
        with pytest.raises(CatalogError, match=r"repeats column 'ra'") as refused:
            open_catalog(csv)
        assert ("'dec'" in str(refused.value)) == header.endswith("dec")


@pytest.mark.services
def test_a_csv_with_a_repeated_column_loads_nothing(catalog_db, tmp_path, capsys):
    # Given a CSV with two 'ra' columns
    csv = _csv(tmp_path, "ra,dec,ra\n1,2,3\n")
    # When it is loaded, Then boom refuses it naming the column, and writes nothing
    assert "repeats column 'ra'" in _boom_fails(capsys, "load", "twice", str(csv))
    assert catalog_db.list_collection_names() == []


# --- repeated ids ---------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_an_id_repeated_in_the_file_is_named_and_nothing_is_loaded(
    catalog_db, tmp_path, batch_size, capsys
):
    # Given a CSV whose rows 1 and 3 share the id 'b' (same batch or not)
    csv = _csv(tmp_path, "name,ra,dec\na,1,2\nb,3,4\nc,5,6\n b ,7,8\n")
    # When it is loaded with --id name
    error = _boom_fails(
        capsys, "load", "ids", str(csv), "--id", "name", "--batch-size", str(batch_size)
    )
    # Then the id and its rows are named, not counted as "already present"
    assert "id 'b' of column 'name' is on rows 1 and 3" in error
    assert "ids must be unique in the file" in error
    assert catalog_db.list_collection_names() == []


@pytest.mark.services
def test_unique_ids_load_and_an_interrupted_load_by_id_still_resumes(catalog_db, tmp_path):
    # Given a catalog with unique ids, loaded in batches of 2
    rows = "".join(f"s{i},{i},{i / 2}\n" for i in range(10))
    csv = _csv(tmp_path, "name,ra,dec\n" + rows)
    options = LoadOptions(id="name", batch_size=2)
    load_catalog(catalog_db, "byid", csv, options)
    # When a load died after writing rows 0-6 but checkpointing only 4
    catalog_db["byid"].delete_many({"_id": {"$in": ["s7", "s8", "s9"]}})
    catalog_db[META_COLLECTION].update_one({"_id": "byid"}, {"$set": {"rows_loaded": 4}})
    resumed = load_catalog(catalog_db, "byid", csv, options)
    # Then it resumes at the checkpoint, finds rows 4-6 present and adds the rest
    assert (resumed.resumed_from, resumed.rows_read, resumed.inserted) == (4, 6, 3)
    assert resumed.rows == 10 and resumed.complete
    # But the same interrupted load of a file repeating an id past the checkpoint is
    # refused, rather than the repeated row being taken for one written before
    dup = _csv(tmp_path, "name,ra,dec\n" + rows + "s2,1,1\n", "dup.csv")
    load_catalog(catalog_db, "dup", dup, LoadOptions(id="name", batch_size=2, limit=10))
    with pytest.raises(CatalogError, match="id 's2' of column 'name' is on rows 2 and 10"):
        load_catalog(catalog_db, "dup", dup, LoadOptions(id="name", batch_size=2))
    assert catalog_db["dup"].count_documents({}) == 10


# --- failed loads ---------------------------------------------------------------------


@pytest.mark.services
def test_a_load_stopped_by_a_bad_row_is_listed_as_failed_and_not_matched(
    catalog_db, tmp_path, capsys
):
    # Given a load that stops at an unparsable declination in its second batch
    csv = _csv(tmp_path, "ra,dec\n1,2\n3,4\n5,ten\n")
    assert "cannot read dec 'ten'" in _boom_fails(
        capsys, "load", "bad", str(csv), "--batch-size", "2"
    )
    # Then its metadata says failed, and why
    meta = catalog_db[META_COLLECTION].find_one({"_id": "bad"})
    assert meta["status"] == "failed" and "row 2: cannot read dec 'ten'" in meta["error"]
    # And `boom catalogs list` shows it failed, with the reason
    with pytest.raises(SystemExit):
        boom_main(["catalogs", "list"])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("bad"))
    assert "failed" in line and "cannot read dec 'ten'" in line
    # And the crossmatch skips it
    plans, problems = plan_catalogs(catalog_db, [CrossmatchCatalog(catalog="bad", radius=2.0)])
    assert plans == [] and problems == ["bad: load is failed, not complete"]

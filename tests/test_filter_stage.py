"""Users' filters on real services and real alerts, against an independent Python computation."""

from __future__ import annotations

import json

import pytest

from boom_tasks.cli import main as boom_main
from boom_tasks.crossmatch.stage import crossmatch_batch
from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.run import run_filters
from boom_tasks.filter.store import FILTERS, add_filter, get_filter, load_active, set_active
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.settings import get_settings
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet

FOLDERS = ["fink-20181129", "kowalski", "boom-402", "ampel-ztf-20210720"]

#: BOOM's "fast transient" style: bright, real, young, positive, with annotations.
FAST = [
    {"$match": {"candidate.drb": {"$gt": 0.8}, "candidate.magpsf": {"$lt": 19.0}}},
    {"$addFields": {"age": {"$subtract": ["$candidate.jd", "$candidate.jdstarthist"]}}},
    {"$match": {"age": {"$lt": 10}, "candidate.isdiffpos": {"$in": ["t", "1"]}}},
    {
        "$project": {
            "objectId": 1,
            "annotations": {
                "mag": {"$round": ["$candidate.magpsf", 2]},
                "age": {"$round": ["$age", 3]},
            },
        }
    },
]
#: Few previous detections, and not a known variable star (needs the aux lookup).
NEW_NON_VARIABLE = [
    {"$match": {"candidate.ndethist": {"$lte": 3}, "cross_matches.vsx.0": {"$exists": False}}},
    {"$project": {"objectId": 1, "annotations": {"ndethist": "$candidate.ndethist"}}},
]
#: Real and faint (no drb before schema 3.3: those alerts never pass).
FAINT = [
    {"$match": {"candidate.magpsf": {"$gt": 20.0}, "candidate.drb": {"$exists": True}}},
    {"$project": {"objectId": 1}},
]


def _fast(alert, aux) -> dict | None:
    c = alert["candidate"]
    if not (c.get("drb") is not None and c["drb"] > 0.8 and c["magpsf"] < 19.0):
        return None
    age = c["jd"] - c["jdstarthist"]
    if age >= 10 or c["isdiffpos"] not in ("t", "1"):
        return None
    return {"mag": round(c["magpsf"], 2), "age": round(age, 3)}


def _new_non_variable(alert, aux) -> dict | None:
    if alert["candidate"]["ndethist"] > 3 or aux["cross_matches"].get("vsx"):
        return None
    return {"ndethist": alert["candidate"]["ndethist"]}


def _faint(alert, aux) -> dict | None:
    c = alert["candidate"]
    return {} if c["magpsf"] > 20.0 and "drb" in c else None


@pytest.fixture(scope="module")
def fdb(services):
    """Real alerts ingested and crossmatched (no catalog: a few VSX matches set by hand)."""
    import pymongo

    db = pymongo.MongoClient(services.mongo.uri, tz_aware=True)[f"{services.mongo.database}_flt"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    packets = [read_packet(p) for folder in FOLDERS for p in packet_paths(folder)]
    candids = ingest_packets(db, ZTF, packets, "flt").candids
    crossmatch_batch(db, ZTF, [], candids)
    young = db[ZTF.alerts].find({"candidate.ndethist": {"$lte": 3}}, {"objectId": 1}).limit(5)
    marked = [a["objectId"] for a in young]
    db[ZTF.aux].update_many(
        {"_id": {"$in": marked}},
        {"$set": {"cross_matches.vsx": [{"_id": 1, "distance_arcsec": 0.5}]}},
    )
    yield db, candids, marked
    db.client.drop_database(db.name)


def _expected(db, candids, rule) -> dict[int, dict]:
    aux = {d["_id"]: d for d in db[ZTF.aux].find()}
    out = {}
    for alert in db[ZTF.alerts].find({"_id": {"$in": candids}}):
        if alert["candidate"].get("programid") != 1:
            continue
        notes = rule(alert, aux[alert["objectId"]])
        if notes is not None:
            out[alert["_id"]] = notes
    return out


def _add(db, name, pipeline, programids=(1,)) -> str:
    fid = add_filter(
        db,
        name=name,
        survey="ZTF",
        pipeline=json.dumps(pipeline),
        programids=programids,
        aux_collection=ZTF.aux,
    )
    set_active(db, fid, True)
    return fid


def test_filters_pass_exactly_what_python_says_with_their_annotations(fdb):
    db, candids, marked = fdb
    db[FILTERS].delete_many({})
    ids = {
        _add(db, "fast", FAST): _fast,
        _add(db, "new", NEW_NON_VARIABLE): _new_non_variable,
        _add(db, "faint", FAINT): _faint,
    }
    # When every active filter runs on the batch
    outcomes, deactivated = run_filters(
        db, ZTF, load_active(db, "ZTF"), candids, get_settings().filters
    )
    assert deactivated == [] and all(o.error is None for o in outcomes)
    # Then each passes exactly the alerts the independent computation passes, annotations included
    for o in outcomes:
        expected = _expected(db, candids, ids[o.filter.id])
        got = {p["_id"]: p.get("annotations", {}) for p in o.passes}
        assert got == expected, o.filter.name
        assert expected, f"{o.filter.name} passes nothing: the check would be vacuous"
    # And the crossmatch condition took effect: marked objects' young alerts were excluded
    new = next(o for o in outcomes if o.filter.name == "new")
    assert not {p["objectId"] for p in new.passes} & set(marked)
    # And passes are recorded once, even when the batch is run again
    n = db[ZTF.filter_passes].count_documents({})
    assert n == sum(len(o.passes) for o in outcomes)
    run_filters(db, ZTF, load_active(db, "ZTF"), candids, get_settings().filters)
    assert db[ZTF.filter_passes].count_documents({}) == n


def test_permissions_restrict_the_programids_a_filter_sees(fdb):
    db, candids, _ = fdb
    db[FILTERS].delete_many({})
    _add(db, "only-2", [{"$match": {}}, {"$project": {"objectId": 1}}], programids=(2,))
    ((outcome,), _) = run_filters(db, ZTF, load_active(db, "ZTF"), candids, get_settings().filters)
    expected = db[ZTF.alerts].count_documents({"_id": {"$in": candids}, "candidate.programid": 2})
    assert len(outcome.passes) == expected


def test_an_invalid_filter_is_refused_with_its_reasons(fdb):
    db, _, _ = fdb
    bad = [{"$match": {"candidate.magpsf": {"$lt": 19}}}, {"$out": "stolen"}]
    with pytest.raises(FilterInvalid, match=r"\$out writes to a collection"):
        add_filter(
            db,
            name="bad",
            survey="ZTF",
            pipeline=json.dumps(bad),
            programids=[1],
            aux_collection=ZTF.aux,
        )
    with pytest.raises(FilterInvalid, match="JSON"):
        add_filter(
            db, name="bad", survey="ZTF", pipeline="[{", programids=[1], aux_collection=ZTF.aux
        )


def test_a_filter_failing_at_run_time_is_isolated_then_deactivated_with_its_reason(fdb):
    db, candids, _ = fdb
    db[FILTERS].delete_many({})
    good = _add(db, "good", FAINT)
    broken = [{"$match": {}}, {"$project": {"objectId": 1, "x": {"$toInt": "$objectId"}}}]
    bad = _add(db, "broken", broken)
    settings = FilterSettings(max_failures=2)
    for batch in (1, 2):
        outcomes, deactivated = run_filters(db, ZTF, load_active(db, "ZTF"), candids, settings)
        by_id = {o.filter.id: o for o in outcomes}
        # the good filter still ran and passed its alerts; the broken one is recorded
        assert by_id[good].error is None and by_id[good].passes
        assert by_id[bad].error
        assert get_filter(db, bad)["last_error"]["message"] == by_id[bad].error
        assert deactivated == ([bad] if batch == 2 else [])
    doc = get_filter(db, bad)
    assert doc["active"] is False and doc["disabled_reason"].startswith("failed 2 batches in a row")
    assert [f.id for f in load_active(db, "ZTF")] == [good]


def test_a_filter_over_its_time_budget_is_deactivated(fdb):
    db, candids, _ = fdb
    db[FILTERS].delete_many({})
    slow = _add(db, "slow", NEW_NON_VARIABLE)
    settings = FilterSettings(time_budget_ms=10, max_failures=1)
    outcomes, deactivated = run_filters(db, ZTF, load_active(db, "ZTF"), candids, settings)
    assert deactivated == [slow]
    assert "budget of 10 ms" in outcomes[0].error
    assert "budget of 10 ms" in get_filter(db, slow)["disabled_reason"]


@pytest.mark.xfail(
    strict=True,
    reason="SecantusDB divergence: field paths that traverse arrays inside aggregation "
    "expressions ($min of $prv_candidates.magpsf) come back missing; correct on MongoDB",
)
def test_a_filter_on_the_light_curve_peak(fdb):
    db, candids, _ = fdb
    db[FILTERS].delete_many({})
    peak = [
        {"$addFields": {"peak": {"$min": "$prv_candidates.magpsf"}}},
        {"$match": {"peak": {"$lt": 18.0}}},
        {"$project": {"objectId": 1}},
    ]
    _add(db, "peak", peak)
    ((outcome,), _) = run_filters(db, ZTF, load_active(db, "ZTF"), candids, get_settings().filters)
    aux = {d["_id"]: d for d in db[ZTF.aux].find()}
    expected = set()
    for a in db[ZTF.alerts].find({"_id": {"$in": candids}, "candidate.programid": 1}):
        jd = a["candidate"]["jd"]
        mags = [
            p["magpsf"]
            for p in aux[a["objectId"]]["prv_candidates"]
            if p.get("programid") == 1 and p["jd"] <= jd and jd - p["jd"] < 365
        ]
        if mags and min(mags) < 18.0:
            expected.add(a["_id"])
    assert expected and {p["_id"] for p in outcome.passes} == expected


def test_cli_adds_tests_and_activates_with_the_match_rate_check(fdb, monkeypatch, capsys, tmp_path):
    db, candids, _ = fdb
    db[FILTERS].delete_many({})
    monkeypatch.setenv("BOOM_MONGO__DATABASE", db.name)
    get_settings.cache_clear()

    def boom(*argv: str) -> int:
        with pytest.raises(SystemExit) as done:
            boom_main(list(argv))
        return int(done.value.code or 0)

    try:
        (tmp_path / "fast.json").write_text(json.dumps(FAST))
        assert boom("filters", "add", "fast", f"@{tmp_path / 'fast.json'}") == 0
        filter_id = capsys.readouterr().out.split(" stored as ")[1].split()[0]
        # test over stored alerts: prints how many pass, publishes nothing
        assert boom("filters", "test", filter_id, "--candids", *map(str, candids)) == 0
        out = capsys.readouterr().out
        assert f"{len(_expected(db, candids, _fast))} of {len(candids)} alerts pass" in out
        # a filter passing everything is refused on activation
        everything = json.dumps([{"$match": {}}, {"$project": {"objectId": 1}}])
        assert boom("filters", "add", "all", everything) == 0
        all_id = capsys.readouterr().out.split(" stored as ")[1].split()[0]
        assert boom("filters", "activate", all_id, "--reference-night", "20181129") == 2
        assert "more than filters.max_match_rate" in capsys.readouterr().err
        assert boom("filters", "activate", filter_id, "--reference-night", "20181129") == 0
        assert [f.name for f in load_active(db, "ZTF")] == ["fast"]
        capsys.readouterr()
        # and an active filter cannot be updated into an everything-filter either
        before = db[FILTERS].find_one({"_id": filter_id})
        assert boom("filters", "update", filter_id, everything) == 2
        assert "more than filters.max_match_rate" in capsys.readouterr().err
        assert db[FILTERS].find_one({"_id": filter_id}) == before
    finally:
        get_settings.cache_clear()

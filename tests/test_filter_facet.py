"""Filters run together (one ``$facet`` per group and chunk) pass exactly what they pass alone."""

from __future__ import annotations

import pytest

from bench.filters import bench_filters
from boom_tasks.config_base import project_path
from boom_tasks.crossmatch.stage import crossmatch_batch
from boom_tasks.errors import ResultTooLarge
from boom_tasks.filter.config import FilterSettings
from boom_tasks.filter.facet import Group, group_pipeline, plan_groups, run_group
from boom_tasks.filter.run import FilterOutcome, run_filter, run_filters
from boom_tasks.filter.store import FILTERS, ActiveFilter, get_filter, load_active
from boom_tasks.filter.validate import uses_aux
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.ml.registry import load_models
from boom_tasks.ml.stage import enrich_batch
from boom_tasks.services.mongo import user_aggregate
from boom_tasks.settings import get_settings
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet
from tests.test_filter_stage import FAINT, FAST, NEW_NON_VARIABLE, _add

FOLDERS = ["fink-20181129", "kowalski", "boom-402", "ampel-ztf-20210720"]

#: Joins only after a stage other than ``$match``: runs alone, never in a group.
LATE_JOIN = [
    {"$addFields": {"bright": {"$lt": ["$candidate.magpsf", 18.5]}}},
    {"$match": {"bright": True, "cross_matches.vsx.0": {"$exists": False}}},
    {"$project": {"objectId": 1, "annotations": {"n": {"$size": "$prv_candidates"}}}},
]
#: Names the light curve but not the cross-matches: in a group lifting both, it must not
#: see ``cross_matches``. Its annotations list the fields at the root of what it sees.
HISTORY_ONLY = [
    {"$match": {"candidate.rb": {"$gt": 0.2}}},
    {"$addFields": {"n": {"$size": "$prv_candidates"}}},
    {
        "$project": {
            "objectId": 1,
            "annotations": {
                "n": "$n",
                "fields": {"$map": {"input": {"$objectToArray": "$$ROOT"}, "in": "$$this.k"}},
            },
        }
    },
]


@pytest.fixture(scope="module")
def xdb(services):
    """Real alerts ingested, crossmatched (a few matches set by hand) and through ML."""
    import pymongo

    db = pymongo.MongoClient(services.mongo.uri, tz_aware=True)[f"{services.mongo.database}_fct"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    packets = [read_packet(p) for folder in FOLDERS for p in packet_paths(folder)]
    candids = ingest_packets(db, ZTF, packets, "fct").candids
    crossmatch_batch(db, ZTF, [], candids)
    objects = sorted(db[ZTF.aux].distinct("_id"))
    for k, catalog in enumerate(("vsx", "mangrove", "gcvs")):
        db[ZTF.aux].update_many(
            {"_id": {"$in": objects[k::7]}},
            {"$set": {f"cross_matches.{catalog}": [{"_id": k, "distance_arcsec": 0.5}]}},
        )
    settings = get_settings()
    models = load_models(settings.ml, "ZTF", project_path(settings.ml.models_dir))
    enrich_batch(db, ZTF, models, candids)
    yield db, candids
    db.client.drop_database(db.name)


def _install(db) -> None:
    db[FILTERS].delete_many({})
    for name, pipeline in bench_filters():
        _add(db, name, pipeline, programids=(0, 1))
    for name, pipeline in [("fast", FAST), ("new", NEW_NON_VARIABLE), ("faint", FAINT)]:
        _add(db, name, pipeline)
    _add(db, "late_join", LATE_JOIN, programids=(1, 2))
    _add(db, "history_only", HISTORY_ONLY, programids=(0, 1))
    _add(db, "fast_all", FAST, programids=(1, 2, 3))


def _passes(outcomes) -> dict[str, dict]:
    return {o.filter.name: {p["_id"]: p for p in o.passes} for o in outcomes}


def test_grouped_passes_are_identical_to_one_filter_at_a_time(xdb):
    db, candids = xdb
    _install(db)
    filters = load_active(db, "ZTF")
    # Given the bench's 25 filters and the test filters, in groups and alone
    groups, alone = plan_groups(filters)
    assert sorted(len(g.filters) for g in groups) == [2, 6, 20]
    assert {f.name for f in alone} == {"late_join", "fast_all", "new"}
    assert any(g.aux_fields == ("cross_matches", "prv_candidates") for g in groups)
    settings = FilterSettings(candids_per_query=100)
    # When the batch runs grouped, then one filter at a time
    grouped, _ = run_filters(db, ZTF, filters, candids, settings)
    solo, _ = run_filters(db, ZTF, filters, candids, settings, solo=True)
    # Then every filter passes the same alerts with the same documents, and none failed
    assert all(o.error is None for o in grouped + solo)
    assert _passes(grouped) == _passes(solo)
    # And the passes were recorded once: by the first run, none again by the second
    assert all(o.new_passes == len(o.passes) for o in grouped)
    assert all(o.new_passes == 0 for o in solo)
    ids = {o.filter.id for o in grouped}
    stored = db[ZTF.filter_passes].count_documents({"filter_id": {"$in": list(ids)}})
    assert stored == sum(len(o.passes) for o in grouped)
    passing = {name for name, p in _passes(grouped).items() if p}
    assert len(passing) >= 20, f"too few filters pass anything: {sorted(passing)}"
    assert {"hosted", "short_history", "new", "history_only", "not_star"} <= passing
    # And a filter naming only the light curve did not see the group's cross-matches
    seen = [p["annotations"]["fields"] for p in _passes(grouped)["history_only"].values()]
    assert seen and all("prv_candidates" in f and "cross_matches" not in f for f in seen)


def test_a_failing_filter_in_a_group_is_isolated_and_deactivated(xdb, caplog):
    db, candids = xdb
    db[FILTERS].delete_many({})
    good = _add(db, "good", FAINT)
    fast = _add(db, "fast", FAST)
    # fails at run time, but only on alerts after 2020: the group's first chunks (2018) succeed
    late = {"$cond": [{"$gt": ["$candidate.jd", 2459000]}, "x", "1"]}
    broken = [{"$match": {}}, {"$project": {"objectId": 1, "x": {"$toInt": late}}}]
    bad = _add(db, "broken", broken)
    filters = load_active(db, "ZTF")
    groups, alone = plan_groups(filters)
    assert len(groups) == 1 and not alone
    settings = FilterSettings(max_failures=2, candids_per_query=50)
    expected, _ = run_filters(
        db, ZTF, [f for f in filters if f.id != bad], candids, settings, solo=True
    )
    for batch in (1, 2):
        outcomes, deactivated = run_filters(db, ZTF, load_active(db, "ZTF"), candids, settings)
        by_id = {o.filter.id: o for o in outcomes}
        # the good filters passed exactly what they pass alone; the broken one is recorded
        assert _passes([by_id[good], by_id[fast]]) == _passes(expected)
        assert by_id[good].passes and by_id[fast].passes
        assert by_id[bad].error and not by_id[bad].passes
        assert get_filter(db, bad)["last_error"]["message"] == by_id[bad].error
        assert deactivated == ([bad] if batch == 2 else [])
    # the group ran together until the chunk that failed, then one filter at a time
    fell_back = [r.getMessage() for r in caplog.records if "one filter at a time" in r.message]
    assert len(fell_back) == 2
    assert all(0 < int(m.split(" on ")[1].split()[0]) < len(candids) for m in fell_back)
    assert get_filter(db, bad)["active"] is False
    assert {f.id for f in load_active(db, "ZTF")} == {good, fast}


def _big(name: str, size: int) -> ActiveFilter:
    """A filter passing every alert with an annotation of ``size`` integers (~12 bytes each)."""
    pipeline = [
        {"$match": {}},
        {
            "$project": {
                "objectId": 1,
                "annotations": {"pad": {"$map": {"input": {"$range": [0, size]}, "in": 1}}},
            }
        },
    ]
    return ActiveFilter(name, name, "v1", [0, 1, 2, 3], pipeline, uses_aux(pipeline))


def test_a_chunk_whose_result_is_too_big_is_split_not_failed(xdb):
    db, candids = xdb
    # Given two filters whose combined result on 24 alerts is ~70 MB (16 MB is MongoDB's
    # limit; the stand-in sends it and the driver refuses a reply over 48 MB)
    part = sorted(candids)[:24]
    group = Group((0, 1, 2, 3), (), (_big("a", 120_000), _big("b", 120_000)))
    with pytest.raises(ResultTooLarge):
        user_aggregate(db[ZTF.alerts], group_pipeline(group, group.filters, part, ZTF), 60_000)
    settings = FilterSettings(candids_per_query=24)
    calls: list[int] = []

    def run_alone(f, chunk, budget_ms) -> FilterOutcome:
        calls.append(len(chunk))
        return run_filter(db, ZTF, f, chunk, settings, budget_ms)

    # When the group runs on them
    outcomes = run_group(db, ZTF, group, part, settings, run_alone, FilterOutcome)
    # Then the chunk was split, nothing fell back to one filter at a time, and every
    # alert passed both filters with its full annotation
    assert calls == []
    for o in outcomes:
        assert o.error is None
        assert sorted(p["_id"] for p in o.passes) == part
        assert all(len(p["annotations"]["pad"]) == 120_000 for p in o.passes)


def test_the_filter_actor_runs_each_filter_alone_every_solo_every_batches(settings, monkeypatch):
    # Given the filter actor on a StubBroker, its filters' work recorded (no servers)
    from types import SimpleNamespace

    from dramatiq.brokers.stub import StubBroker
    from dramatiq.results import Results
    from dramatiq.results.backends import StubBackend

    import boom_tasks.filter.actor as filter_
    import boom_tasks.messages as messages

    broker = StubBroker()
    broker.add_middleware(Results(backend=StubBackend()))
    solo_flags: list[bool] = []

    def run(*_, solo=False):
        solo_flags.append(solo)
        return [FilterOutcome(filter=SimpleNamespace(id="f1"), passes=[])], []  # type: ignore[arg-type]

    class Cache:
        def __init__(self, *_):
            pass

        def get(self, *_):
            return ["f"]

    monkeypatch.setattr(filter_, "run_filters", run)
    monkeypatch.setattr(filter_, "FilterCache", Cache)
    monkeypatch.setattr(filter_, "record_passes", lambda *_: None)
    monkeypatch.setattr(filter_, "get_client", lambda _: None)
    monkeypatch.setattr(filter_, "get_db", lambda _: None)
    monkeypatch.setattr(messages, "record_stage", lambda *_: None)
    monkeypatch.setattr(messages, "record_stage_night", lambda *_: None)
    monkeypatch.setattr(messages, "get_client", lambda _: None)
    every = settings.model_copy(
        update={"filters": settings.filters.model_copy(update={"solo_every": 3})}
    )
    actor = filter_.declare(broker, ZTF, every, None)
    # When it filters seven batches
    for _ in range(7):
        actor([1, 2], {"received": 1.0})
    # Then the third and sixth ran every filter alone, the others grouped
    assert solo_flags == [False, False, True, False, False, True, False]
    broker.close()


def test_the_aux_join_carries_only_the_fields_the_filters_name():
    from boom_tasks.filter.pipeline import aux_stages

    # Given filters naming the light curve only, then the other surveys' matches
    def joined(fields):
        lookup = aux_stages(fields, [1], ZTF)[0]["$lookup"]
        return lookup["localField"], lookup["pipeline"]

    # Then the join brings those fields (and _id) only: not the non-detections, the
    # bookkeeping or the coordinates every stage after it would copy
    assert joined(["prv_candidates"]) == ("objectId", [{"$project": {"prv_candidates": 1}}])
    # And the other surveys' matches bring the aliases they are found through
    assert joined(["cross_matches", "survey_matches"])[1] == [
        {"$project": {"cross_matches": 1, "aliases": 1}}
    ]

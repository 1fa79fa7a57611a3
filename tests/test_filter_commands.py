"""The filter command layer (boom_tasks.filter.commands*), called directly on real MongoDB.

The CLI and the API only parse, call these and print; so what a filter operation
does (validate, check ownership and programids, guard the match rate, store,
signal the workers) is tested here once, without either face.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo
import pytest

from boom_tasks.filter import commands, commands_trial
from boom_tasks.filter.commands_base import Caller, FilterEnv, operator
from boom_tasks.filter.commands_trial import Chosen
from boom_tasks.filter.errors import FilterForbidden, FilterInvalid, FilterNotFound, FilterRefused
from boom_tasks.filter.store import FILTERS
from boom_tasks.filter.testing import MatchRateTooHigh, Selection, night_jd_range, run_trial
from boom_tasks.ingest.indexes import ensure_indexes
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.surveys import ZTF
from tests.alerts import packet_paths, read_packet

#: This module's database of real alerts (the mongo_db fixture is emptied per test).
ALERTS_DB = "boom_test_filter_commands"
#: The night of 479 public alerts (fink-20181129).
NIGHT = "20181129"
EVERYTHING = [{"$match": {}}, {"$project": {"objectId": 1}}]
BRIGHT = [
    {"$match": {"candidate.magpsf": {"$lt": 15.0}}},
    {"$project": {"objectId": 1, "annotations": {"mag": "$candidate.magpsf"}}},
]
ALICE = Caller(name="alice", admin=False, programids=(1,))
BOB = Caller(name="bob", admin=False, programids=(1, 3))


class Signals:
    """Counts the signals a command sends to the filter workers."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _env(db: Any, settings: Any) -> tuple[FilterEnv, Signals]:
    signals = Signals()
    return FilterEnv(db, settings.filters, signals), signals


@pytest.fixture(scope="module")
def alerts_db(services) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    client = pymongo.MongoClient(services.mongo.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(ALERTS_DB)
    db = client[ALERTS_DB]
    ensure_indexes(db, ZTF)
    ingest_packets(db, ZTF, [read_packet(p) for p in packet_paths("fink-20181129")], "commands")
    yield db
    client.drop_database(ALERTS_DB)
    client.close()


# --- add, show, list, deactivate: no alerts needed ---------------------------------------


def test_add_stores_an_inactive_filter_owned_by_its_caller(mongo_db, settings):
    env, signals = _env(mongo_db, settings)
    # When alice adds a filter
    doc = commands.add(
        env, ALICE, name="bright", survey="ztf", pipeline=BRIGHT, programids=[1], description="d"
    )
    # Then it is stored inactive, hers, on the canonical survey name, and the workers are told
    stored = mongo_db[FILTERS].find_one({"_id": doc["_id"]})
    assert stored["user_id"] == "alice" and stored["survey"] == "ZTF"
    assert stored["active"] is False and len(stored["fv"]) == 1
    assert stored["permissions"] == {"ZTF": [1]}
    assert signals.count == 1
    # And show answers it to her and to an operator, list shows it to its owner only
    assert commands.show(env, ALICE, doc["_id"])["name"] == "bright"
    assert commands.show(env, operator(), doc["_id"])["_id"] == doc["_id"]
    assert [d["_id"] for d in commands.list_(env, ALICE)] == [doc["_id"]]
    assert commands.list_(env, BOB) == []
    assert [d["_id"] for d in commands.list_(env, operator(), "ZTF")] == [doc["_id"]]


def test_another_users_filter_reads_as_one_that_does_not_exist(mongo_db, settings):
    env, signals = _env(mongo_db, settings)
    doc = commands.add(env, ALICE, name="mine", survey="ZTF", pipeline=BRIGHT, programids=[1])
    # When bob asks for alice's filter, and anyone for an id that does not exist
    with pytest.raises(FilterNotFound) as theirs:
        commands.show(env, BOB, doc["_id"])
    with pytest.raises(FilterNotFound) as missing:
        commands.deactivate(env, operator(), "nope", "why")
    # Then both read alike: another user's ids are not revealed
    assert theirs.value.describe() == f"filter with id {doc['_id']} does not exist"
    assert missing.value.describe() == "filter with id nope does not exist"
    # And bob cannot change it either; nothing was signalled for his attempts
    before = signals.count
    with pytest.raises(FilterNotFound):
        commands.deactivate(env, BOB, doc["_id"], "bob says so")
    assert signals.count == before
    assert mongo_db[FILTERS].find_one({"_id": doc["_id"]}).get("disabled_reason") is None


def test_a_bad_pipeline_is_refused_with_every_problem_and_nothing_stored(mongo_db, settings):
    env, signals = _env(mongo_db, settings)
    bad = [{"$match": {"x": {"$gtx": 1}}}, {"$out": "elsewhere"}]
    with pytest.raises(FilterInvalid) as refused:
        commands.add(env, ALICE, name="bad", survey="ZTF", pipeline=bad, programids=[1])
    message = refused.value.describe()
    assert message.startswith("invalid filter pipeline: ")
    assert "$gtx" in message and "$out" in message
    assert mongo_db[FILTERS].count_documents({}) == 0 and signals.count == 0
    # validate gives the same refusal, and answers a good pipeline as it would be stored
    with pytest.raises(FilterInvalid):
        commands.validate(env, ALICE, bad, "ZTF")
    assert commands.validate(env, ALICE, BRIGHT, "ZTF") == BRIGHT


def test_programids_beyond_the_callers_and_unknown_surveys_are_refused(mongo_db, settings):
    env, _ = _env(mongo_db, settings)
    with pytest.raises(FilterForbidden, match=r"programids \[2\] are beyond your permissions"):
        commands.add(env, BOB, name="p2", survey="ZTF", pipeline=BRIGHT, programids=[1, 2])
    with pytest.raises(FilterRefused, match="NOPE"):
        commands.add(env, ALICE, name="s", survey="NOPE", pipeline=BRIGHT, programids=[1])
    # An operator (the command line) may use any programids
    doc = commands.add(env, operator(), name="p2", survey="ZTF", pipeline=BRIGHT, programids=[2])
    assert doc["permissions"] == {"ZTF": [2]} and doc["user_id"] == "admin"
    assert mongo_db[FILTERS].count_documents({}) == 1


def test_deactivate_records_the_reason(mongo_db, settings):
    env, signals = _env(mongo_db, settings)
    doc = commands.add(env, ALICE, name="f", survey="ZTF", pipeline=BRIGHT, programids=[1])
    done = commands.deactivate(env, ALICE, doc["_id"], "too many passes")
    assert (done.name, done.reason) == ("f", "too many passes")
    stored = mongo_db[FILTERS].find_one({"_id": doc["_id"]})
    assert stored["active"] is False and stored["disabled_reason"] == "too many passes"
    assert signals.count == 2


# --- activate, update, test: on a real night ---------------------------------------------


def test_activation_is_guarded_by_the_match_rate(alerts_db, settings):
    env, signals = _env(alerts_db, settings)
    everything = commands.add(
        env, ALICE, name="all", survey="ZTF", pipeline=EVERYTHING, programids=[1]
    )["_id"]
    # When alice activates a filter passing every alert of the night
    with pytest.raises(MatchRateTooHigh) as refused:
        commands.activate(env, ALICE, everything, reference_night=NIGHT)
    # Then it stays inactive, and the message says by how much and what to do
    assert f"passes 100.00% of night {NIGHT}" in refused.value.describe()
    assert commands.ACTIVATE_HINT in refused.value.describe()
    assert alerts_db[FILTERS].find_one({"_id": everything})["active"] is False
    # Forcing it is for administrators only
    with pytest.raises(FilterForbidden, match="only an administrator"):
        commands.activate(env, ALICE, everything, force=True)
    forced = commands.activate(env, operator(), everything, force=True)
    assert forced.check is None and alerts_db[FILTERS].find_one({"_id": everything})["active"]
    # A selective filter passes the check, which is returned with its figures
    bright = commands.add(env, ALICE, name="b", survey="ZTF", pipeline=BRIGHT, programids=[1])
    done = commands.activate(env, ALICE, bright["_id"], reference_night=NIGHT)
    assert done.check is not None and done.check.report is not None
    assert done.check.night == NIGHT and done.check.report.tried > 400
    assert done.fid == bright["active_fid"]
    assert signals.count == 4  # two adds, two activations; the refusals sent nothing


def test_a_new_version_of_an_active_filter_is_checked_first(alerts_db, settings):
    env, _ = _env(alerts_db, settings)
    doc = commands.add(env, ALICE, name="v", survey="ZTF", pipeline=BRIGHT, programids=[1])
    commands.activate(env, ALICE, doc["_id"], reference_night=NIGHT)
    # When alice replaces its running pipeline with one passing everything
    with pytest.raises(MatchRateTooHigh, match=commands.UPDATE_HINT):
        commands.update(env, ALICE, doc["_id"], EVERYTHING)
    assert len(alerts_db[FILTERS].find_one({"_id": doc["_id"]})["fv"]) == 1
    # Stored without making it active, it is not checked and does not run
    added = commands.update(env, ALICE, doc["_id"], EVERYTHING, make_active=False)
    assert added.check is None and added.active_fid == doc["active_fid"] != added.fid
    assert len(alerts_db[FILTERS].find_one({"_id": doc["_id"]})["fv"]) == 2


def test_trials_answer_what_the_filter_functions_do(alerts_db, settings):
    env, signals = _env(alerts_db, settings)
    doc = commands.add(env, BOB, name="t", survey="ZTF", pipeline=BRIGHT, programids=[1])
    night = Chosen(Selection(jd_range=night_jd_range(NIGHT)), f"night {NIGHT}")
    # When bob tests his stored filter, and the same pipeline inline, over the night
    stored = commands_trial.test_stored(env, BOB, doc["_id"], chosen=night)
    inline = commands_trial.test_pipeline(
        env, BOB, BRIGHT, survey="ZTF", programids=[1], chosen=night
    )
    # Then both answer what run_trial answers on the night's candids
    candids = sorted(d["_id"] for d in alerts_db[ZTF.alerts].find({}, {"_id": 1}))
    expected = run_trial(alerts_db, ZTF, BRIGHT, [1], candids, settings.filters)
    assert 0 < len(expected.passed) < expected.tried
    for result in (stored, inline):
        assert result.tried == expected.tried
        assert [d["_id"] for d in result.passed] == [d["_id"] for d in expected.passed]
        assert result.selection == f"night {NIGHT}"
    assert stored.filter == {"id": doc["_id"], "name": "t", "fid": doc["active_fid"]}
    assert inline.filter is None
    # No selection means the newest stored night (here the only one)
    newest = commands_trial.test_stored(env, BOB, doc["_id"])
    assert newest.selection == f"night {NIGHT}" and newest.tried == expected.tried
    # Tests store nothing and signal nothing beyond the add
    assert signals.count == 1
    with pytest.raises(FilterForbidden):
        commands_trial.test_pipeline(env, ALICE, BRIGHT, survey="ZTF", programids=[3])

"""The science-actor API without servers: result checks, selections, loading, wiring."""

from __future__ import annotations

import numpy as np
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend

from boom_tasks.chain import declare_chain
from boom_tasks.errors import ConfigError
from boom_tasks.science.base import (
    PNG_SIGNATURE,
    ScienceActor,
    ScienceResultInvalid,
    check_result,
    split_selection,
)
from boom_tasks.science.config import ScienceSettings
from boom_tasks.science.loader import load_actor, load_actors, survey_actors
from boom_tasks.surveys import SURVEYS


def _run(alerts):
    return {}


def _stub() -> StubBroker:
    broker = StubBroker()
    broker.add_middleware(Results(backend=StubBackend()))  # the stage actors store results
    broker.emit_after("process_boot")
    return broker


# --- results -----------------------------------------------------------------------------


def test_a_good_result_is_stored_as_plain_python_with_figures_apart():
    png = PNG_SIGNATURE + b"rest"
    result = {
        "peak": np.float64(2.5),
        "n": np.int32(7),
        "ok": np.bool_(True),
        "curve": np.array([1.0, 2.0]),
        "bands": {"g": {"valid": False, "problems": ["too few"]}},
        "figures": {"lightcurve": png},
    }
    doc, figures = check_result("x", 1, result)
    assert doc == {
        "peak": 2.5,
        "n": 7,
        "ok": True,
        "curve": [1.0, 2.0],
        "bands": {"g": {"valid": False, "problems": ["too few"]}},
    }
    assert type(doc["peak"]) is float and type(doc["n"]) is int and type(doc["ok"]) is bool
    assert figures == {"lightcurve": png}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"fit": {"g": {"chi2": float("nan")}}}, r"fit\.g\.chi2 is nan \(store None"),
        ({"t": [1.0, float("inf")]}, r"t\[1\] is inf"),
        ({"a.b": 1}, r"key 'a\.b' under 'the result' must be a non-empty string"),
        ({"x": {"$set": 1}}, r"key '\$set' under 'x'"),
        ({"blob": b"\x00\x01"}, r"blob has type bytes; use numbers"),
        ({"big": 2**70}, r"big = \d+ is beyond a 64-bit integer"),
        ({"figures": {"lc": b"GIF89a"}}, r"figures\.lc is not PNG bytes"),
        ([1, 2], r"expected a dict, got list"),
    ],
)
def test_a_malformed_result_is_refused_with_the_actor_candid_and_field(result, message):
    with pytest.raises(
        ScienceResultInvalid, match=r"science actor demo: result for candid 42: " + message
    ):
        check_result("demo", 42, result)


# --- declarations and selections -----------------------------------------------------------


def test_a_selection_splits_into_its_alert_and_object_parts():
    selection = {
        "candidate.fid": 1,
        "$or": [{"candidate.sgscore1": {"$lt": 0.5}}, {"candidate.distpsnr1": {"$gt": 1.5}}],
        "cross_matches.mangrove.0": {"$exists": True},
    }
    alert, aux = split_selection("demo", selection)
    assert alert == {"candidate.fid": 1, "$or": selection["$or"]}
    assert aux == {"cross_matches.mangrove.0": {"$exists": True}}


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"$or": [{"cross_matches.vsx.0": {"$exists": True}}, {"candidate.fid": 1}]}, "mixes"),
        ({"prv_candidates.5": {"$exists": True}}, "cannot test prv_candidates"),
    ],
)
def test_a_selection_the_broker_cannot_apply_is_refused_at_declaration(selection, message):
    with pytest.raises(ConfigError, match=message):
        ScienceActor(name="demo", surveys=("ZTF",), run=_run, selection=selection)


def test_a_bad_declaration_is_refused():
    with pytest.raises(ConfigError, match="lower-case"):
        ScienceActor(name="Bad-Name", surveys=("ZTF",), run=_run)
    with pytest.raises(ConfigError, match="at least one survey"):
        ScienceActor(name="ok", surveys=(), run=_run)


# --- loading -----------------------------------------------------------------------------


def test_actors_load_by_name_under_actors_or_by_dotted_path():
    assert load_actor("exgal_transients").name == "exgal_transients"
    assert load_actor("tests.science_actors.probe").field == "science.probe"
    names = ["exgal_transients", "tests.science_actors.probe"]
    assert [a.name for a in survey_actors(names, "ZTF")] == ["exgal_transients", "probe"]
    assert survey_actors(names, "LSST") == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_actor", r"cannot import actors\.no_such_actor"),
        ("bazin", r"actors\.bazin has no ACTOR = ScienceActor"),
    ],
)
def test_a_bad_module_name_fails_with_a_clear_message(name, message):
    with pytest.raises(ConfigError, match=message):
        load_actor(name)


def test_two_actors_with_one_name_are_refused():
    with pytest.raises(ConfigError, match="two configured science actors are named 'probe'"):
        load_actors(["tests.science_actors.probe", "tests.science_actors.probe"])


# --- wiring: a survey without actors skips the hop -------------------------------------------


def test_the_science_hop_is_declared_only_for_surveys_with_actors(settings):
    # Given science actors enabled for ZTF only
    science = ScienceSettings(actors=["tests.science_actors.probe"])
    configured = settings.model_copy(update={"science": science})
    broker = _stub()
    # When the chain is declared
    actors = declare_chain(broker, SURVEYS.values(), configured)
    # Then ZTF's ML hands to ztf_science, which hands to ztf_filter
    assert list(actors["ZTF"]) == ["ingest", "crossmatch", "ml", "science", "filter", "output"]
    # And LSST has no science stage: its ML stage's next actor is the filter's
    assert list(actors["LSST"]) == ["ingest", "crossmatch", "ml", "filter", "output"]
    assert "lsst_science" not in broker.get_declared_queues()
    assert "ztf_science" in broker.get_declared_queues()
    broker.close()


def test_ml_sends_to_science_or_straight_to_filter(settings, monkeypatch):
    import boom_tasks.messages as messages
    import boom_tasks.ml.actor as ml
    from boom_tasks.ml.stage import MLResult

    monkeypatch.setattr(messages, "record_stage", lambda *a: None)
    monkeypatch.setattr(messages, "record_stage_night", lambda *_: None)
    monkeypatch.setattr(messages, "get_client", lambda _: None)
    monkeypatch.setattr(messages, "wait_durable", lambda *_: None)
    monkeypatch.setattr(ml, "survey_models", lambda *_: [])
    monkeypatch.setattr(ml, "enrich_batch", lambda *_: MLResult(alerts=2))
    science = ScienceSettings(actors=["tests.science_actors.probe"])
    broker = _stub()
    actors = declare_chain(
        broker, SURVEYS.values(), settings.model_copy(update={"science": science})
    )
    # When each survey's ML stage finishes a batch
    actors["ZTF"]["ml"]([1, 2], {"received": 1.0})
    actors["LSST"]["ml"]([3], {"received": 1.0})
    # Then ZTF's goes to its science queue and LSST's straight to its filter queue
    ztf = Message.decode(broker.queues["ztf_science"].get_nowait())
    lsst = Message.decode(broker.queues["lsst_filter"].get_nowait())
    assert ztf.args[0] == [1, 2] and lsst.args[0] == [3]
    assert broker.queues["ztf_filter"].qsize() == 0
    broker.close()


@pytest.mark.services
def test_the_science_hop_passes_the_times_on_unchanged_and_counts_on_the_dashboard_only(
    services, unique
):
    import time

    import dramatiq

    from boom_tasks.conductor.counters import prefix, record_received
    from boom_tasks.messages import hand_on
    from boom_tasks.monitor.stats import stage_totals
    from boom_tasks.services.valkey import get_client

    valkey, survey = get_client(services.valkey), f"S{unique}"
    broker = _stub()
    nxt = dramatiq.actor(lambda *a: None, broker=broker, actor_name="nxt", queue_name="nxt")
    # Given a batch the bridge recorded on its night
    received = time.time()
    record_received(valkey, survey, "20261201", received, 2, {}, keep_days=1)
    times = {"received": received, "ingested": received + 1.0}
    # When the science stage hands it on unstamped, and the ML stage stamped
    hand_on(services, survey, "science", [1, 2], times, nxt, stamped=False)
    hand_on(services, survey, "enriched", [1, 2], times, nxt)
    # Then the science hop's message carries the times it was given
    sent = [Message.decode(broker.queues["nxt"].get_nowait()) for _ in range(2)]
    assert sent[0].args == ([1, 2], times)
    assert "enriched" in sent[1].args[1]
    # And both are counted on the dashboard
    totals = {t.stage: t.count for t in stage_totals(valkey, survey, ["science", "enriched"])}
    assert totals == {"science": 2, "enriched": 2}
    # And only the stamped stage in the night report's bookkeeping
    night = f"{prefix(survey)}:20261201"
    assert valkey.exists(f"{night}:enriched") and not valkey.exists(f"{night}:science")
    broker.close()

"""The chain's wiring, in-process on Dramatiq's StubBroker, and the survey-plugin boundary.

These are pure wiring tests: the stage functions are replaced, no server is used.
The same chain runs on real servers in test_pipeline.py and test_output_e2e.py.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import Results
from dramatiq.results.backends import StubBackend

from boom_tasks.chain import CHAIN, declare_chain
from boom_tasks.science.config import ScienceSettings
from boom_tasks.surveys import SURVEYS
from boom_tasks.surveys.ztf import ZTF

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "boom_tasks"


@pytest.fixture
def stub(settings):
    broker = StubBroker()
    # The stage actors store their results, as on Valkey.
    broker.add_middleware(Results(backend=StubBackend()))
    broker.emit_after("process_boot")
    yield broker
    broker.close()


def test_the_chain_is_declared_in_order_on_the_broker_given(stub, settings):
    # When the chain of every survey is declared on a StubBroker
    actors = declare_chain(stub, SURVEYS.values(), settings)
    # Then each survey has one actor per stage, in pipeline order, on its own queue
    # (science only for a survey with an enabled science actor: ZTF, by default)
    assert [s.name for s in CHAIN] == ["ingest", "crossmatch", "ml", "science", "filter", "output"]
    assert settings.science.actors == ["exgal_transients"]
    declared = set()
    for name, survey in SURVEYS.items():
        stages = [s.name for s in CHAIN if s.name != "science" or name == "ZTF"]
        assert list(actors[name]) == stages
        for stage, actor in actors[name].items():
            assert actor.broker is stub
            assert actor.queue_name == actor.actor_name == f"{survey.queue_prefix}_{stage}"
            declared.add(actor.queue_name)
    assert {q for q in stub.get_declared_queues() if not q.endswith(".DQ")} == declared


def test_each_stage_hands_its_candids_to_the_next(stub, settings, monkeypatch):
    # Given the chain on a StubBroker with the stages' work replaced (no servers)
    import boom_tasks.crossmatch.actor as crossmatch
    import boom_tasks.filter.actor as filter_
    import boom_tasks.messages as messages
    import boom_tasks.ml.actor as ml
    from boom_tasks.filter.run import FilterOutcome
    from boom_tasks.ml.stage import MLResult

    recorded = []
    monkeypatch.setattr(messages, "record_stage", lambda *a: recorded.append(a[2]))
    monkeypatch.setattr(messages, "record_stage_night", lambda *_: None)
    monkeypatch.setattr(messages, "get_client", lambda _: None)
    # (durable hand-offs are tested on the real Valkey in test_durability.py)
    monkeypatch.setattr(messages, "wait_durable", lambda *_: None)
    monkeypatch.setattr(crossmatch, "current_plans", lambda *_: [])
    monkeypatch.setattr(crossmatch, "crossmatch_batch", lambda *_: 0)
    monkeypatch.setattr(ml, "survey_models", lambda *_: [])
    monkeypatch.setattr(ml, "enrich_batch", lambda *_: MLResult(alerts=3))

    class Cache:
        def __init__(self, *_):
            pass

        def get(self, *_):
            return ["f"]

    passed = FilterOutcome(filter=SimpleNamespace(id="f1"), passes=[{"_id": 2}])  # type: ignore[arg-type]
    monkeypatch.setattr(filter_, "FilterCache", Cache)
    monkeypatch.setattr(filter_, "run_filters", lambda *_, **__: ([passed], []))
    monkeypatch.setattr(filter_, "record_passes", lambda *_: None)
    monkeypatch.setattr(filter_, "get_client", lambda _: None)
    # (without science actors: ML hands to the filters; test_science_base.py has the hop)
    no_science = settings.model_copy(update={"science": ScienceSettings(actors=[])})
    actors = declare_chain(stub, [ZTF], no_science)["ZTF"]

    # When crossmatch, ML and filter each run on the message the previous one sent
    actors["crossmatch"]([1, 2, 3], {"received": 1.0, "ingested": 2.0})
    ml_message = _next(stub, "ztf_ml")
    actors["ml"](*ml_message.args)
    filter_message = _next(stub, "ztf_filter")
    actors["filter"](*filter_message.args)
    output_message = _next(stub, "ztf_output")

    # Then every hop carries the candids and the times stamped so far, in order
    assert ml_message.args[0] == [1, 2, 3]
    assert list(ml_message.args[1]) == ["received", "ingested", "crossmatched"]
    assert filter_message.args[0] == [1, 2, 3]
    assert list(filter_message.args[1])[-1] == "enriched"
    # And only the candids that passed a filter reach the output stage
    assert output_message.args[0] == [2]
    assert list(output_message.args[1])[-1] == "filtered"
    assert recorded == ["crossmatched", "enriched", "filtered"]


def _next(broker: StubBroker, queue: str) -> Message:
    """Return the one message waiting on ``queue`` (the StubBroker holds encoded messages)."""
    assert broker.queues[queue].qsize() == 1
    return Message.decode(broker.queues[queue].get_nowait())


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_stage_module_imports_a_concrete_survey():
    # Given every module of boom_tasks outside the survey plugins
    concrete = [f"boom_tasks.surveys.{name.lower()}" for name in SURVEYS]
    stage_modules = [
        p for p in PACKAGE.rglob("*.py") if "surveys" not in p.relative_to(PACKAGE).parts
    ]
    assert len(stage_modules) > 100
    # Then none of them imports a survey's own modules (only the registry and the base)
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.startswith(tuple(concrete)))
        for p in stage_modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    # And the check is not vacuous: the registry does import them
    assert any(n.startswith(tuple(concrete)) for n in _imports(PACKAGE / "surveys" / "__init__.py"))

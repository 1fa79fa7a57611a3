"""The science stage: every enabled actor of a survey on one batch of candids.

Step 1: skip the actors disabled on the survey (``science_actors``);
Step 2: for each actor, read the alerts its selection keeps (:mod:`.select`) and
        call its ``run`` on them, timed against its budget (a run still going at
        twice its budget is stopped: :mod:`.deadline`);
Step 3: check every result (:func:`~.base.check_result`); an exception, an
        over-budget run or one malformed result fails the actor's batch: nothing
        of it is stored, the error goes on the alerts (``science_errors.<name>``)
        and is counted (:mod:`.health`), and the next actor runs;
Step 4: publish the results to the actor's output topic (if any), then store them
        (``science.<name>``) and the figures.

The batch always goes on to the filters: an actor's failure never holds it back.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from boom_tasks.science import health
from boom_tasks.science.base import ScienceActor, ScienceResultInvalid, check_result
from boom_tasks.science.config import ScienceSettings
from boom_tasks.science.deadline import ActorStopped, hard_limit
from boom_tasks.science.loader import prepare
from boom_tasks.science.publish import message_document
from boom_tasks.science.select import select_alerts
from boom_tasks.science.store import stored_result, write_errors, write_results
from boom_tasks.surveys import Survey

log = logging.getLogger(__name__)

#: A run still going at this many times its ``time_budget_s`` is stopped (:mod:`.deadline`).
HARD_LIMIT_FACTOR = 2.0

#: ``(topic, {candid: document}) -> delivered``; None when no Kafka is at hand.
Publisher = Callable[[str, Mapping[int, dict[str, Any]]], int]


@dataclass
class ActorOutcome:
    """What one actor did on one batch."""

    name: str
    selected: int = 0
    results: int = 0
    published: int = 0
    seconds: float = 0.0
    error: str | None = None
    disabled: bool = False
    skipped: str | None = None  # why it did not run (disabled earlier)


@dataclass
class BatchRun:
    """One actor's computed batch, before anything is stored."""

    alerts: list[dict[str, Any]]
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    figures: dict[int, dict[str, bytes]] = field(default_factory=dict)


def compute(actor: ScienceActor, alerts: list[dict[str, Any]], now: dt.datetime) -> BatchRun:
    """Run the actor on its alerts and check the results.

    Raises
    ------
    ScienceResultInvalid
        For a result naming an alert it was not given, or malformed (see ``check_result``).
    Exception
        Whatever the actor's own code raises: the caller isolates it.
    """
    run = BatchRun(alerts)
    raw = actor.run(alerts)
    if not isinstance(raw, Mapping):
        raise ScienceResultInvalid(
            f"science actor {actor.name}: run() returned {type(raw).__name__}, "
            "expected a dict {candid: result}"
        )
    given = {a["_id"] for a in alerts}
    for candid, result in raw.items():
        if candid not in given:
            raise ScienceResultInvalid(
                f"science actor {actor.name}: result for candid {candid!r}, not in its batch"
            )
        doc, figures = check_result(actor.name, candid, result)
        run.results[candid] = doc
        if figures:
            run.figures[candid] = figures
    return run


def _timed_compute(
    actor: ScienceActor, alerts: list[dict[str, Any]], now: dt.datetime, outcome: ActorOutcome
) -> BatchRun | None:
    started = time.monotonic()
    limit = HARD_LIMIT_FACTOR * actor.time_budget_s
    try:
        with hard_limit(limit):
            run = compute(actor, alerts, now)
    except ActorStopped:
        outcome.error = (
            f"stopped after {time.monotonic() - started:.2f} s on {len(alerts)} alerts, "
            f"still running at {HARD_LIMIT_FACTOR:g} times its budget of {actor.time_budget_s} s"
        )
        log.error("science actor %s: %s", actor.name, outcome.error)
        return None
    except ScienceResultInvalid as e:
        outcome.error = str(e)
        return None
    except Exception as e:  # the actor's own code, whatever it raises: isolate, record, count
        log.exception("science actor %s raised", actor.name)
        outcome.error = f"{type(e).__name__}: {e}"
        return None
    finally:
        outcome.seconds = time.monotonic() - started
    if outcome.seconds > actor.time_budget_s:
        outcome.error = (
            f"took {outcome.seconds:.2f} s on {len(alerts)} alerts, "
            f"over its budget of {actor.time_budget_s} s"
        )
        return None
    return run


def _deliver(
    db: Database,
    survey: Survey,
    actor: ScienceActor,
    run: BatchRun,
    now: dt.datetime,
    settings: ScienceSettings,
    publisher: Publisher | None,
) -> int:
    """Publish (if the actor has a topic) and store one computed batch; return published."""
    stored = {
        c: stored_result(survey, actor, c, doc, run.figures.get(c, {}), now)
        for c, doc in run.results.items()
    }
    published = 0
    if actor.output_topic and publisher is not None and stored:
        by_id = {a["_id"]: a for a in run.alerts}
        docs = {
            c: message_document(survey.name, actor, by_id[c], r, settings.api_url)
            for c, r in stored.items()
        }
        published = publisher(actor.output_topic, docs)
    write_results(db, survey, actor, stored, run.figures)
    return published


def run_actor(
    db: Database,
    survey: Survey,
    actor: ScienceActor,
    candids: Sequence[int],
    settings: ScienceSettings,
    publisher: Publisher | None,
    *,
    now: dt.datetime | None = None,
    redo: bool = False,
) -> ActorOutcome:
    """Run one actor on a batch and record its health; never raises for the actor's faults."""
    now = now or dt.datetime.now(dt.UTC)
    outcome = ActorOutcome(actor.name)
    prepare(actor)
    alerts = select_alerts(db, survey, actor, candids, redo=redo, chunk=settings.candids_per_query)
    outcome.selected = len(alerts)
    if not alerts:
        return outcome
    run = _timed_compute(actor, alerts, now, outcome)
    if run is None:
        log.warning("%s science actor %s failed: %s", survey.name, actor.name, outcome.error)
        write_errors(db, survey, actor, [a["_id"] for a in alerts], str(outcome.error), now)
        outcome.disabled = health.record_failure(
            db, survey.name, actor, str(outcome.error), settings.max_failures, now
        )
        return outcome
    outcome.published = _deliver(db, survey, actor, run, now, settings, publisher)
    outcome.results = len(run.results)
    health.record_success(db, survey.name, actor, len(alerts), outcome.results, outcome.seconds)
    return outcome


def run_science(
    db: Database,
    survey: Survey,
    actors: Sequence[ScienceActor],
    candids: Sequence[int],
    settings: ScienceSettings,
    publisher: Publisher | None,
) -> list[ActorOutcome]:
    """Run every enabled actor of the survey on the batch (see the module docstring)."""
    off = health.disabled(db, survey.name, [a.name for a in actors])
    outcomes = []
    for actor in actors:
        if actor.name in off:
            outcomes.append(ActorOutcome(actor.name, skipped=off[actor.name]))
            continue
        outcomes.append(run_actor(db, survey, actor, candids, settings, publisher))
    return outcomes

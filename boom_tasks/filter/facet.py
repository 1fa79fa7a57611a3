"""Run a survey's active filters together: one aggregation per group of filters per chunk.

Step 1: group the filters by what the broker injects before their own stages: the
        programids they may see, and whether the aux ``$lookup`` is needed
        (:func:`plan_groups`). A filter whose stages before its first aux field are
        not all ``$match`` runs alone: joining earlier could change what those stages
        see. So does a filter with no other filter of its kind.
Step 2: for each chunk of candids, one aggregation per group (:func:`group_pipeline`):
        the broker's ``$match``, the ``$lookup`` once (lifting every aux field any
        member names), then ``$facet`` with one sub-pipeline per filter: the filter's
        own stages, with the lifted fields it does not name unset before any stage
        could see them, so it sees exactly the document it sees alone.
Step 3: guarantees (:func:`run_group`): a chunk whose result is over the 16 MB
        document limit is split in halves and retried; a chunk the database refuses,
        or one past the group's budget, and every chunk after it, run one filter at a
        time (:func:`boom_tasks.filter.run.run_filter`), each within what is left of its
        own budget, which finds and isolates the faulty filter.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boom_tasks.errors import QueryRejected, ResultTooLarge
from boom_tasks.filter.pipeline import aux_stages, batch_match
from boom_tasks.filter.validate import aux_fields_in
from boom_tasks.services.mongo import user_aggregate

if TYPE_CHECKING:
    from pymongo.database import Database

    from boom_tasks.filter.config import FilterSettings
    from boom_tasks.filter.run import FilterOutcome
    from boom_tasks.filter.store import ActiveFilter
    from boom_tasks.surveys.base import Survey

log = logging.getLogger(__name__)

#: Runs one filter alone on candids within a budget: ``(filter, candids, budget_ms)``.
SoloRunner = Callable[["ActiveFilter", Sequence[int], int], "FilterOutcome"]


@dataclass(frozen=True)
class Group:
    """Filters that share the broker's stages, so they can run as one aggregation."""

    #: The programids every member may see (the broker's ``$match`` and history cut).
    programids: tuple[int, ...]
    #: Aux fields lifted for the group (every field any member names); empty: no join.
    aux_fields: tuple[str, ...]
    filters: tuple[ActiveFilter, ...]


def _joins_first(pipeline: list[dict[str, Any]]) -> bool:
    """Return True if only ``$match`` stages come before the first stage naming an aux field.

    A ``$match`` only drops alerts, so joining before it changes nothing of what the
    stage or the join see; any other stage could rewrite a field the join reads.
    """
    for stage in pipeline:
        if aux_fields_in(stage):
            return True
        if next(iter(stage)) != "$match":
            return False
    return True


def plan_groups(filters: Sequence[ActiveFilter]) -> tuple[list[Group], list[ActiveFilter]]:
    """Return the groups of two or more filters, and the filters that run alone.

    Filters are grouped by programids and by whether they need the aux join.
    """
    keyed: dict[tuple[tuple[int, ...], bool], list[ActiveFilter]] = defaultdict(list)
    alone: list[ActiveFilter] = []
    for f in filters:
        needs_join = bool(aux_fields_in(f.pipeline))
        if needs_join and not _joins_first(f.pipeline):
            alone.append(f)
        else:
            keyed[(tuple(sorted(set(f.programids))), needs_join)].append(f)
    groups = []
    for (programids, needs_join), members in keyed.items():
        if len(members) == 1:
            alone += members
            continue
        named = {field for f in members for field in aux_fields_in(f.pipeline)}
        groups.append(Group(programids, tuple(sorted(named)) if needs_join else (), tuple(members)))
    return groups, alone


def facet_name(index: int) -> str:
    """Return the ``$facet`` output name of the group's ``index``-th filter."""
    return f"f{index}"


def group_pipeline(
    group: Group, filters: Sequence[ActiveFilter], candids: Sequence[int], survey: Survey
) -> list[dict[str, Any]]:
    """Return the one aggregation running ``filters`` (members of ``group``) on ``candids``."""
    stages = [batch_match(candids, group.programids, survey.permissions)]
    if group.aux_fields:
        stages += aux_stages(group.aux_fields, group.programids, survey)
    facet = {}
    for i, f in enumerate(filters):
        extra = sorted(set(group.aux_fields) - set(aux_fields_in(f.pipeline)))
        facet[facet_name(i)] = _without(extra, f.pipeline)
    return [*stages, {"$facet": facet}]


def _without(extra: list[str], pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``pipeline`` with ``extra`` fields unset before any stage that could see them.

    A ``$match`` that does not name them sees them only through ``$$ROOT``/``$$CURRENT``,
    so the ``$unset`` goes after the leading such ``$match`` stages: it then copies only
    the alerts they keep (each stage copies every document on the local stand-in).
    """
    if not extra:
        return pipeline
    at = 0
    while at < len(pipeline) and _blind_match(pipeline[at]):
        at += 1
    return [*pipeline[:at], {"$unset": extra}, *pipeline[at:]]


def _blind_match(stage: dict[str, Any]) -> bool:
    text = json.dumps(stage)
    return next(iter(stage)) == "$match" and "$$ROOT" not in text and "$$CURRENT" not in text


def _chunks(candids: Sequence[int], step: int) -> list[list[int]]:
    return [list(candids[k : k + step]) for k in range(0, len(candids), step)]


def run_group(
    db: Database,
    survey: Survey,
    group: Group,
    candids: Sequence[int],
    settings: FilterSettings,
    run_alone: SoloRunner,
    new_outcome: Callable[[ActiveFilter], FilterOutcome],
) -> list[FilterOutcome]:
    """Run the group on the batch (see the module docstring); never raises for a filter's fault.

    The group gets, for the whole batch, one filter's budget (``time_budget_ms``): the
    combined run of many cheap filters costs a fraction of it, so running past it
    means a filter is pathological (or the server overloaded), and the one-at-a-time
    rerun then applies each filter's own budget.
    """
    started = time.monotonic()
    outcomes = [new_outcome(f) for f in group.filters]
    pending = _chunks(candids, settings.candids_per_query)
    budget_ms = settings.time_budget_ms
    fell_back = False
    while pending and not fell_back:
        chunk = pending.pop(0)
        left_ms = budget_ms - int((time.monotonic() - started) * 1000)
        try:
            if left_ms <= 0:
                raise QueryRejected(f"the group ran past its budget of {budget_ms} ms")
            pipeline = group_pipeline(group, group.filters, chunk, survey)
            (result,) = user_aggregate(db[survey.alerts], pipeline, left_ms) or [{}]
        except ResultTooLarge:
            if len(chunk) > 1:  # the combined passes of a chunk are over 16 MB: halve it
                half = len(chunk) // 2
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            _fall_back(outcomes, chunk, pending, settings, started, run_alone, "over 16 MB")
            fell_back = True
            continue
        except QueryRejected as e:  # a member's fault, or the budget: find it alone
            _fall_back(outcomes, chunk, pending, settings, started, run_alone, str(e))
            fell_back = True
            continue
        for i, outcome in enumerate(outcomes):
            outcome.passes += result.get(facet_name(i), [])
    if not fell_back:  # each member is charged an equal share of the group's time
        for outcome in outcomes:
            outcome.seconds = (time.monotonic() - started) / len(outcomes)
    return outcomes


def _fall_back(
    outcomes: Sequence[FilterOutcome],
    chunk: list[int],
    pending: list[list[int]],
    settings: FilterSettings,
    started: float,
    run_alone: SoloRunner,
    why: str,
) -> None:
    """Run each member alone on ``chunk`` and every pending chunk; merge into ``outcomes``."""
    rest = [c for part in [chunk, *pending] for c in part]
    pending.clear()
    log.warning("a filter group ran one filter at a time on %d alerts: %s", len(rest), why)
    # Each member has spent an equal share of the group's time so far.
    share = (time.monotonic() - started) / max(len(outcomes), 1)
    for outcome in outcomes:
        left_ms = max(1, settings.time_budget_ms - int(share * 1000))
        alone = run_alone(outcome.filter, rest, left_ms)
        outcome.seconds = share + alone.seconds
        outcome.error = alone.error
        outcome.passes = [] if alone.error else outcome.passes + alone.passes

"""Accepting or refusing a user filter before it ever runs on live alerts.

A filter is a MongoDB aggregation pipeline over the alerts collection, run once
per batch of alerts (BOOM's and Kowalski's format). The broker runs it, so it
must only read, act on one alert at a time, and end with the fields the broker
reports. The checks:

Step 1: parse the text into a list of stages (:func:`parse_pipeline`).
Step 2: check each stage: one operator, a per-alert stage ($match, $project,
$addFields/$set, $unset, $redact, $replaceRoot/$replaceWith); no writing
($out, $merge), no server-side JavaScript ($function, $where, $accumulator) and
no reading of other collections ($lookup, $graphLookup, $unionWith) at any depth;
no unknown operator at any depth; no $project or $unset dropping ``_id`` or
``objectId``; no reference to the broker's temporary join.
Step 3: check the whole: at least one $match, and a last stage that is a
$project keeping ``_id`` and ``objectId`` (plus ``annotations``, which travel
with the alert).

Every problem is collected and raised together in one :class:`FilterInvalid`.
Stages are numbered from 0, as they sit in the JSON array.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.operators import KNOWN_OPERATORS

#: The history arrays of an aux document (as ``boom_tasks.ingest.history`` stores them).
AUX_HISTORY_FIELDS = ("prv_candidates", "prv_nondetections", "fp_hists")
#: Fields of the aux document the broker lifts to the root of an alert when a
#: filter names them (BOOM lifts these four, plus cross-survey ``aliases`` we do not store).
#: The other surveys' light curves of the same object, joined by the broker
#: (:mod:`boom_tasks.filter.joint`) when a filter names it.
SURVEY_MATCHES_FIELD = "survey_matches"
AUX_FIELDS = (*AUX_HISTORY_FIELDS, "cross_matches", "aliases", SURVEY_MATCHES_FIELD)
#: Field holding the joined aux document while its fields are lifted. It is removed
#: before the filter's stages run, so a path into it always reads as missing.
AUX_JOIN_FIELD = "aux"

#: The stages a filter is made of: each one acts on one alert at a time.
ALLOWED_STAGES = (
    "$match",
    "$project",
    "$addFields",
    "$set",
    "$unset",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
)
#: Stages reading another collection; BOOM refuses them all, the aux join included.
JOIN_STAGES = frozenset({"$lookup", "$graphLookup", "$unionWith"})

_WRITES = "writes to a collection; filters may only read"
_JAVASCRIPT = "runs server-side JavaScript, which filters may not"
#: Operators refused wherever they appear, nested expressions and pipelines included.
FORBIDDEN_ANYWHERE = {
    "$out": _WRITES,
    "$merge": _WRITES,
    "$function": _JAVASCRIPT,
    "$where": _JAVASCRIPT,
    "$accumulator": _JAVASCRIPT,
}

_BATCH = (
    "combines the alerts of a batch, so whether an alert passes would depend on "
    "which other alerts arrived with it"
)
_SUBSET = (
    "keeps only some documents of the batch, so whether an alert passes would depend "
    "on which other alerts arrived with it"
)
_FIRST = "must be the first stage of a pipeline, and the broker's own $match always is"
_SERVER = "reports on the server, not on alerts"
#: Stages that report on the server (sessions, plans, storage), not on documents.
SERVER_STAGES = (
    "$changeStream",
    "$changeStreamSplitLargeEvent",
    "$collStats",
    "$currentOp",
    "$indexStats",
    "$listClusterCatalog",
    "$listLocalSessions",
    "$listSampledQueries",
    "$listSearchIndexes",
    "$listSessions",
    "$planCacheStats",
    "$querySettings",
    "$queryStats",
    "$shardedDataDistribution",
)
#: Stages refused at the top level of a filter, with the reason its author is given.
FORBIDDEN_STAGES = {
    **dict.fromkeys(("$group", "$bucket", "$bucketAuto", "$sortByCount", "$count"), _BATCH),
    **dict.fromkeys(("$setWindowFields", "$fill"), _BATCH),
    **dict.fromkeys(("$limit", "$skip", "$sample"), _SUBSET),
    **dict.fromkeys(("$geoNear", "$search", "$searchMeta", "$vectorSearch"), _FIRST),
    **dict.fromkeys(("$rankFusion", "$scoreFusion"), _FIRST),
    **dict.fromkeys(SERVER_STAGES, _SERVER),
    "$facet": "folds the whole batch into a single document",
    "$densify": "adds documents that are not alerts",
    "$documents": "replaces the alerts with literal documents",
    "$sort": "orders the batch, which means nothing to a per-alert filter",
    "$unwind": (
        "turns one alert into one document per array element, so an alert could pass "
        "several times; test the array with $filter, $anyElementTrue or $elemMatch instead"
    ),
}
#: Fields the broker needs in every document a filter passes.
_REQUIRED_FIELDS = ("_id", "objectId")
_EXAMPLE_LAST = '{"$project": {"objectId": 1, "annotations": 1}}'


def parse_pipeline(text_or_obj: str | bytes | list[Any]) -> list[dict[str, Any]]:
    """Return a filter pipeline as a list, parsing it first when it is JSON text.

    Parameters
    ----------
    text_or_obj
        The pipeline as JSON text (how filters are stored) or as an already
        parsed list of stages.

    Raises
    ------
    FilterInvalid
        The text is not valid JSON (the message gives the position), or it is
        not a JSON array.
    """
    parsed: Any = text_or_obj
    if isinstance(text_or_obj, str | bytes):
        try:
            parsed = json.loads(text_or_obj)
        except json.JSONDecodeError as e:
            where = f"line {e.lineno}, column {e.colno} (character {e.pos})"
            raise FilterInvalid([f"the pipeline is not valid JSON: {e.msg} at {where}"]) from None
        except RecursionError:
            raise FilterInvalid(["the pipeline is nested too deeply to read"]) from None
    if not isinstance(parsed, list):
        raise FilterInvalid([f"a pipeline must be an array of stages, not {_json_type(parsed)}"])
    return parsed


def validate_pipeline(pipeline: Any, *, aux_collection: str) -> list[dict[str, Any]]:
    """Return ``pipeline`` unchanged if the broker may run it as a filter.

    Parameters
    ----------
    pipeline
        The parsed pipeline (see :func:`parse_pipeline`).
    aux_collection
        The per-object history collection the broker joins itself; named in the
        message refusing a filter that joins it.

    Raises
    ------
    FilterInvalid
        With every problem found, each naming its stage and operator.
    """
    if not isinstance(pipeline, list) or not pipeline:
        what = "an empty array" if pipeline == [] else _json_type(pipeline)
        raise FilterInvalid([f"a pipeline must be a non-empty array of stages, not {what}"])
    problems: list[str] = []
    for index, stage in enumerate(pipeline):
        problems += [f"stage {index}: {p}" for p in _stage_problems(stage, aux_collection)]
    problems += _pipeline_problems(pipeline)
    problems += [
        f"{n} does not fit a 64-bit integer (BSON's largest)" for n in _huge_ints(pipeline)
    ]
    if problems:
        raise FilterInvalid(list(dict.fromkeys(problems)))
    return pipeline


def _huge_ints(value: Any) -> list[int]:
    """Return the integers in ``value`` that BSON cannot store (JSON allows any size)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if not -(2**63) <= value < 2**63 else []
    if isinstance(value, dict):
        return [n for v in value.values() for n in _huge_ints(v)]
    if isinstance(value, list):
        return [n for v in value for n in _huge_ints(v)]
    return []


def aux_fields_in(value: Any) -> list[str]:
    """Return the aux fields (:data:`AUX_FIELDS`) that a stage or pipeline refers to.

    A reference is a field path value (``"$prv_candidates.jd"``, also behind
    ``$$ROOT.``) or a field key (``"cross_matches.vsx.0"`` in a $match, a
    $project key), at any depth.
    """
    references = set(_field_references(value))
    return [
        field
        for field in AUX_FIELDS
        if any(ref == field or ref.startswith(f"{field}.") for ref in references)
    ]


def uses_aux(pipeline: Any) -> bool:
    """Tell whether a pipeline reads the object's history or crossmatches (so needs the join)."""
    return bool(aux_fields_in(pipeline))


def _stage_problems(stage: Any, aux_collection: str) -> list[str]:
    if not isinstance(stage, dict):
        return [f'a stage must be an object such as {{"$match": {{...}}}}, not {_json_type(stage)}']
    if len(stage) != 1:
        found = ", ".join(map(str, stage)) or "none"
        problem = f"a stage must hold exactly one operator, found {len(stage)} ({found})"
        return [problem, *_nested_problems(stage, aux_collection)]
    ((operator, spec),) = stage.items()
    problems = [p for p in [_stage_operator_problem(operator, spec, aux_collection)] if p]
    problems += _nested_problems(spec, aux_collection)
    problems += _join_field_problems(spec)
    if operator == "$project":
        problems += _project_problems(spec)
    elif operator == "$unset":
        problems += _unset_problems(spec)
    return problems


def _stage_operator_problem(operator: str, spec: Any, aux_collection: str) -> str | None:
    if operator in FORBIDDEN_ANYWHERE or operator in JOIN_STAGES:
        return _operator_problem(operator, spec, aux_collection)
    if operator in FORBIDDEN_STAGES:
        return f"{operator} {FORBIDDEN_STAGES[operator]}"
    if operator in ALLOWED_STAGES:
        return None
    allowed = ", ".join(ALLOWED_STAGES)
    if operator in KNOWN_OPERATORS:
        return f"{operator} is not a pipeline stage; a filter's stages are {allowed}"
    return f"unknown operator {operator} (a filter's stages are {allowed})"


def _operator_problem(operator: str, spec: Any, aux_collection: str) -> str | None:
    if operator in FORBIDDEN_ANYWHERE:
        return f"{operator} {FORBIDDEN_ANYWHERE[operator]}"
    if operator in JOIN_STAGES:
        return _join_problem(operator, spec, aux_collection)
    if operator not in KNOWN_OPERATORS:
        return f"unknown operator {operator}"
    return None


def _join_problem(operator: str, spec: Any, aux_collection: str) -> str:
    target = spec.get("from", spec.get("coll")) if isinstance(spec, dict) else spec
    if target == aux_collection:
        fields = ", ".join(AUX_FIELDS)
        return f"{operator} joins {aux_collection}, which the broker does itself: refer to {fields}"
    where = f"the collection {target!r}" if isinstance(target, str) else "another collection"
    return f"{operator} reads {where}; filters may only read the alert and {aux_collection}"


def _nested_problems(value: Any, aux_collection: str) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _nested_problems(item, aux_collection)
    elif isinstance(value, dict):
        for key, sub in value.items():
            if isinstance(key, str) and key.startswith("$"):
                problem = _operator_problem(key, sub, aux_collection)
                if problem:
                    yield problem
                if key == "$literal":
                    continue  # its argument is data, never evaluated
            yield from _nested_problems(sub, aux_collection)


def _field_references(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _field_references(item)
    elif isinstance(value, dict):
        for key, sub in value.items():
            if key == "$literal":
                continue
            if isinstance(key, str) and not key.startswith("$"):
                yield key
            yield from _field_references(sub)
    elif isinstance(value, str):
        for prefix in ("$$ROOT.", "$$CURRENT."):
            if value.startswith(prefix):
                yield value.removeprefix(prefix)
                return
        if value.startswith("$") and not value.startswith("$$"):
            yield value[1:]


def _join_field_problems(spec: Any) -> list[str]:
    problems = []
    for ref in dict.fromkeys(_field_references(spec)):
        if ref == AUX_JOIN_FIELD or ref.startswith(f"{AUX_JOIN_FIELD}."):
            rest = ref.removeprefix(AUX_JOIN_FIELD).lstrip(".") or ", ".join(AUX_FIELDS)
            problems.append(
                f"{ref} reads the broker's temporary {AUX_JOIN_FIELD!r} join, which is gone "
                f"before a filter's stages run; refer to {rest} instead"
            )
    return problems


def _project_problems(spec: Any) -> list[str]:
    if not isinstance(spec, dict) or not spec:
        return ["$project takes a non-empty object of fields"]
    others = {key: value for key, value in spec.items() if key != "_id"}
    drops = [key for key, value in others.items() if _drops(value)]
    keeps = [key for key, value in others.items() if not _drops(value)]
    problems = []
    if drops and keeps:
        problems.append(
            f"$project keeps {', '.join(keeps)} but drops {', '.join(drops)}; "
            "MongoDB allows dropping only _id in a $project that keeps fields"
        )
    if _drops(spec.get("_id", 1)):
        problems.append("$project drops _id, which carries the candid the broker reports")
    if "objectId" in drops:
        problems.append("$project drops objectId, which the broker needs to report the alert")
    elif not _is_exclusion(spec) and "objectId" not in keeps:
        problems.append('$project keeps fields but not objectId; add "objectId": 1')
    return problems


def _is_exclusion(spec: dict[str, Any]) -> bool:
    """Tell whether a $project lists fields to drop (everything else is kept)."""
    others = [value for key, value in spec.items() if key != "_id"]
    return any(map(_drops, others)) if others else _drops(spec.get("_id", 1))


def _drops(value: Any) -> bool:
    """Tell whether a projection value drops its field (0 or false, also nested)."""
    if isinstance(value, dict) and value and not any(str(k).startswith("$") for k in value):
        return any(map(_drops, value.values()))
    return value is False or (type(value) in (int, float) and value == 0)


def _unset_problems(spec: Any) -> list[str]:
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return ["$unset takes a field name or a list of field names"]
    return [
        f"$unset removes {name}, which the broker needs to report the alert"
        for name in names
        if name in _REQUIRED_FIELDS
    ]


def _pipeline_problems(pipeline: list[Any]) -> list[str]:
    problems = []
    if not any(isinstance(stage, dict) and "$match" in stage for stage in pipeline):
        problems.append(
            "the pipeline has no $match stage, so it would pass every alert; "
            "add one with the filter's cuts"
        )
    last_index, last = len(pipeline) - 1, pipeline[-1]
    if not (isinstance(last, dict) and list(last) == ["$project"]):
        problems.append(
            f"stage {last_index}: the last stage must be a $project keeping _id and objectId, "
            f"such as {_EXAMPLE_LAST}"
        )
    elif isinstance(last["$project"], dict) and _is_exclusion(last["$project"]):
        problems.append(
            f"stage {last_index}: the last $project must name the fields it keeps, objectId "
            f"among them, such as {_EXAMPLE_LAST}"
        )
    return problems


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")

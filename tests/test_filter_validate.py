"""Validating user filters and building the pipeline that runs them (pure, no server)."""

import json

import pytest

from boom_tasks.errors import BoomError
from boom_tasks.filter.errors import FilterInvalid
from boom_tasks.filter.operators import KNOWN_OPERATORS, STAGE_OPERATORS
from boom_tasks.filter.pipeline import HISTORY_WINDOW_DAYS, batch_match, run_pipeline
from boom_tasks.filter.validate import (
    ALLOWED_STAGES,
    AUX_HISTORY_FIELDS,
    FORBIDDEN_ANYWHERE,
    FORBIDDEN_STAGES,
    JOIN_STAGES,
    aux_fields_in,
    parse_pipeline,
    uses_aux,
    validate_pipeline,
)
from boom_tasks.ingest.history import HISTORY_FIELDS
from boom_tasks.surveys.ztf import ZTF

AUX = "ZTF_alerts_aux"
LAST = {"$project": {"objectId": 1, "annotations": 1}}
CUT = {"$match": {"candidate.drb": {"$gt": 0.5}}}

#: A BOOM-style filter for young, real, bright, non-stellar transients.
REALISTIC = [
    {
        "$match": {
            "candidate.magpsf": {"$lt": 19.5},
            "candidate.drb": {"$gt": 0.8},
            "candidate.ndethist": {"$gte": 2},
            "candidate.isdiffpos": {"$in": ["t", "1", True]},
            "candidate.programid": 1,
            "$or": [{"candidate.sgscore1": {"$lt": 0.5}}, {"candidate.distpsnr1": {"$gt": 2}}],
        }
    },
    {"$addFields": {"age": {"$subtract": ["$candidate.jd", "$candidate.jdstarthist"]}}},
    {"$match": {"age": {"$lt": 10}, "cross_matches.vsx.0": {"$exists": False}}},
    {
        "$project": {
            "objectId": 1,
            "annotations": {
                "age_days": {"$round": ["$age", 3]},
                "n_detections": {"$size": "$prv_candidates"},
                "faintest": {"$max": "$prv_candidates.magpsf"},
            },
        }
    },
]


def problems_of(pipeline, aux_collection=AUX) -> list[str]:
    with pytest.raises(FilterInvalid) as caught:
        validate_pipeline(pipeline, aux_collection=aux_collection)
    return caught.value.problems


def refused(pipeline, expected: str) -> None:
    problems = problems_of(pipeline)
    assert any(expected in p for p in problems), problems


# --- parsing ---------------------------------------------------------------


def test_parse_accepts_json_text_and_parsed_lists():
    assert parse_pipeline(json.dumps(REALISTIC)) == REALISTIC
    assert parse_pipeline(json.dumps(REALISTIC).encode()) == REALISTIC
    assert parse_pipeline(REALISTIC) is REALISTIC


def test_malformed_json_names_the_position():
    # Given a pipeline missing a closing brace on its second line
    text = '[{"$match": {"candidate.drb": {"$gt": 0.5}}},\n {"$project": {"objectId": 1}]'
    # Then the error is one FilterInvalid (a BoomError) saying where the text breaks
    with pytest.raises(FilterInvalid) as caught:
        parse_pipeline(text)
    assert isinstance(caught.value, BoomError)
    assert "not valid JSON" in str(caught.value)
    assert "line 2, column" in str(caught.value)


def test_json_that_is_not_an_array_is_refused():
    with pytest.raises(FilterInvalid, match="array of stages, not an object"):
        parse_pipeline('{"$match": {}}')


# --- accepted filters ------------------------------------------------------


def test_realistic_filter_is_returned_unchanged():
    assert validate_pipeline(REALISTIC, aux_collection=AUX) is REALISTIC


@pytest.mark.parametrize(
    "stage",
    [
        {"$set": {"annotations.mag": {"$round": ["$candidate.magpsf", 2]}}},
        {"$addFields": {"annotations.acai": "$classifications.acai_h"}},
        {"$unset": ["coordinates", "hpx"]},
        {"$unset": "properties"},
        {"$redact": {"$cond": [{"$gt": ["$candidate.drb", 0.5]}, "$$KEEP", "$$PRUNE"]}},
        {"$replaceWith": {"$mergeObjects": ["$$ROOT", {"extra": 1}]}},
        {"$replaceRoot": {"newRoot": "$$ROOT"}},
        {"$project": {"candidate.magpsf": 1, "objectId": 1, "_id": 1}},
        {"$project": {"cutoutScience": 0, "properties": 0}},
        {"$project": {"candidate": {"magpsf": 1}, "objectId": 1}},
        {"$match": {"$expr": {"$anyElementTrue": {"$map": {"input": [1], "in": True}}}}},
        {"$match": {"objectId": {"$regex": "^ZTF2", "$options": "i"}}},
        {"$match": {"$text": {"$search": "x", "$caseSensitive": False}}},
        {"$set": {"annotations.raw": {"$literal": {"$notAnOperator": 1}}}},
        {"$set": {"annotations.me": "$$ROOT.candidate.ra"}},
    ],
)
def test_per_alert_stages_are_accepted(stage):
    pipeline = [CUT, stage, LAST]
    assert validate_pipeline(pipeline, aux_collection=AUX) is pipeline


@pytest.mark.parametrize(
    "last",
    [
        {"$project": {"objectId": 1}},
        {"$project": {"objectId": True, "_id": 1, "annotations": 1}},
        {"$project": {"objectId": "$objectId", "annotations": {"mag": "$candidate.magpsf"}}},
    ],
)
def test_last_project_keeping_objectid_is_accepted(last):
    assert validate_pipeline([CUT, last], aux_collection=AUX)


# --- refused: shape --------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ([], "non-empty array of stages, not an empty array"),
        ({"$match": {}}, "non-empty array of stages, not an object"),
        ("[]", "not a string"),
    ],
)
def test_pipeline_must_be_a_non_empty_list(pipeline, expected):
    assert expected in problems_of(pipeline)[0]


def test_stage_must_be_an_object_with_one_operator():
    problems = problems_of([CUT, "oops", {"$match": {}, "$project": {}}, {}, LAST])
    assert 'stage 1: a stage must be an object such as {"$match": {...}}, not a string' in problems
    assert "stage 2: a stage must hold exactly one operator, found 2 ($match, $project)" in problems
    assert "stage 3: a stage must hold exactly one operator, found 0 (none)" in problems


def test_unknown_and_non_stage_operators_at_stage_level():
    problems = problems_of([CUT, {"$filterz": {}}, {"$gt": [1, 2]}, LAST])
    assert any(
        p.startswith("stage 1: unknown operator $filterz (a filter's stages are $match")
        for p in problems
    )
    assert any(p.startswith("stage 2: $gt is not a pipeline stage") for p in problems)


def test_no_match_stage_is_refused():
    refused([{"$addFields": {"x": 1}}, LAST], "no $match stage")


# --- refused: forbidden anywhere -------------------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"$out": "stolen"}, "stage 1: $out writes to a collection; filters may only read"),
        ({"$merge": {"into": "x"}}, "stage 1: $merge writes to a collection"),
        (
            {"$match": {"$where": "this.candidate.drb > 0.5"}},
            "stage 1: $where runs server-side JavaScript",
        ),
        (
            {"$match": {"$expr": {"$function": {"body": "f", "args": [], "lang": "js"}}}},
            "stage 1: $function runs server-side JavaScript",
        ),
        (
            {"$set": {"x": {"$accumulator": {"init": "f"}}}},
            "stage 1: $accumulator runs server-side JavaScript",
        ),
    ],
)
def test_writes_and_javascript_are_refused_at_any_depth(stage, expected):
    refused([CUT, stage, LAST], expected)


def test_out_after_valid_stages_is_found():
    problems = problems_of([*REALISTIC, {"$out": "x"}])
    assert "stage 4: $out writes to a collection; filters may only read" in problems
    # and the last stage is then not the required $project
    assert any(p.startswith("stage 4: the last stage must be a $project") for p in problems)


def test_deeply_nested_function_is_found():
    # Given $function inside $cond inside $and inside $expr inside $match
    js = {"$function": {"body": "function() {return true}", "args": [], "lang": "js"}}
    stage = {"$match": {"$expr": {"$and": [{"$cond": [js, True, False]}]}}}
    refused([stage, LAST], "stage 0: $function runs server-side JavaScript")


@pytest.mark.parametrize("operator", sorted(JOIN_STAGES))
def test_joins_into_other_collections_are_refused(operator):
    stage = {operator: {"from": "users", "coll": "users", "as": "u"}}
    refused([CUT, stage, LAST], f"stage 1: {operator} reads the collection 'users'")


def test_join_into_aux_is_refused_since_the_broker_joins_it():
    stage = {"$lookup": {"from": AUX, "localField": "objectId", "foreignField": "_id", "as": "a"}}
    refused([CUT, stage, LAST], f"stage 1: $lookup joins {AUX}, which the broker does itself")


def test_union_with_as_a_bare_name_and_nested_lookup_are_refused():
    refused([CUT, {"$unionWith": "users"}, LAST], "$unionWith reads the collection 'users'")
    nested = {"$facet": {"a": [{"$lookup": {"from": "secrets", "pipeline": [], "as": "s"}}]}}
    problems = problems_of([CUT, nested, LAST])
    only_reads = "filters may only read the alert and ZTF_alerts_aux"
    assert f"stage 1: $lookup reads the collection 'secrets'; {only_reads}" in problems
    assert "stage 1: $facet folds the whole batch into a single document" in problems


def test_aux_collection_name_is_configurable():
    stage = {"$lookup": {"from": "LSST_alerts_aux", "as": "a"}}
    problems = problems_of([CUT, stage, LAST], aux_collection="LSST_alerts_aux")
    assert any("joins LSST_alerts_aux, which the broker does itself" in p for p in problems)


# --- refused: stages that do not act per alert ------------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"$group": {"_id": "$objectId"}}, "$group combines the alerts of a batch"),
        ({"$unwind": "$prv_candidates"}, "$unwind turns one alert into one document per"),
        ({"$sort": {"candidate.jd": 1}}, "$sort orders the batch"),
        ({"$limit": 10}, "$limit keeps only some documents of the batch"),
        ({"$skip": 1}, "$skip keeps only some documents"),
        ({"$sample": {"size": 3}}, "$sample keeps only some documents"),
        ({"$count": "n"}, "$count combines the alerts"),
        ({"$bucket": {"groupBy": "$x", "boundaries": [0, 1]}}, "$bucket combines"),
        ({"$sortByCount": "$objectId"}, "$sortByCount combines"),
        ({"$setWindowFields": {"output": {}}}, "$setWindowFields combines"),
        ({"$facet": {"a": [{"$match": {}}]}}, "$facet folds the whole batch"),
        ({"$densify": {"field": "x", "range": {"step": 1}}}, "$densify adds documents"),
        ({"$documents": [{"x": 1}]}, "$documents replaces the alerts"),
        ({"$geoNear": {"near": [0, 0], "distanceField": "d"}}, "$geoNear must be the first stage"),
        ({"$search": {"text": {}}}, "$search must be the first stage"),
        ({"$collStats": {}}, "$collStats reports on the server"),
        ({"$indexStats": {}}, "$indexStats reports on the server"),
        ({"$currentOp": {}}, "$currentOp reports on the server"),
        ({"$listSessions": {}}, "$listSessions reports on the server"),
        ({"$planCacheStats": {}}, "$planCacheStats reports on the server"),
        ({"$changeStream": {}}, "$changeStream reports on the server"),
    ],
)
def test_stages_that_do_not_act_per_alert_are_refused(stage, expected):
    refused([CUT, stage, LAST], f"stage 1: {expected}")


def test_every_stage_operator_is_allowed_or_refused_with_a_reason():
    decided = set(ALLOWED_STAGES) | set(FORBIDDEN_STAGES) | set(FORBIDDEN_ANYWHERE) | JOIN_STAGES
    assert decided >= STAGE_OPERATORS
    assert decided <= KNOWN_OPERATORS


# --- refused: unknown operators ---------------------------------------------


@pytest.mark.parametrize(
    "stage",
    [
        {"$match": {"candidate.drb": {"$gtx": 0.5}}},
        {"$match": {"$expr": {"$and": [{"$foo": ["$candidate.jd", 1]}]}}},
        {"$set": {"annotations.x": {"$cond": [True, {"$foo": 1}, 0]}}},
    ],
)
def test_unknown_operators_are_refused_at_any_depth(stage):
    problems = problems_of([CUT, stage, LAST])
    assert any(p.startswith("stage 1: unknown operator $") for p in problems), problems


def test_every_problem_is_reported_at_once():
    pipeline = [
        {"$match": {"candidate.drb": {"$gtx": 0.5}}},
        {"$out": "x"},
        {"$set": {"y": {"$function": {}}}},
        {"$project": {"_id": 0, "candid": 1}},
    ]
    problems = problems_of(pipeline)
    assert problems == [
        "stage 0: unknown operator $gtx",
        "stage 1: $out writes to a collection; filters may only read",
        "stage 2: $function runs server-side JavaScript, which filters may not",
        "stage 3: $project drops _id, which carries the candid the broker reports",
        'stage 3: $project keeps fields but not objectId; add "objectId": 1',
    ]
    assert str(FilterInvalid(problems)) == "; ".join(problems)


def test_variables_and_field_paths_are_values_not_operators():
    stage = {"$set": {"a": "$$ROOT", "b": "$candidate.magpsf", "c": "$$NOW", "d": "$"}}
    assert validate_pipeline([CUT, stage, LAST], aux_collection=AUX)


# --- refused: dropping the fields the broker needs ---------------------------


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"$project": {"_id": 0, "objectId": 1}}, "$project drops _id"),
        ({"$project": {"_id": False, "objectId": 1}}, "$project drops _id"),
        ({"$project": {"objectId": 0}}, "$project drops objectId"),
        ({"$project": {"candidate": 1}}, "$project keeps fields but not objectId"),
        ({"$project": {"_id": 1}}, "$project keeps fields but not objectId"),
        (
            {"$project": {"candidate": 1, "properties": 0, "objectId": 1}},
            "$project keeps candidate, objectId but drops properties; MongoDB allows",
        ),
        ({"$project": {}}, "$project takes a non-empty object"),
        ({"$unset": "objectId"}, "$unset removes objectId"),
        ({"$unset": ["candidate", "_id"]}, "$unset removes _id"),
        ({"$unset": {"objectId": 1}}, "$unset takes a field name or a list"),
    ],
)
def test_stages_dropping_id_or_objectid_are_refused(stage, expected):
    refused([CUT, stage, LAST], f"stage 1: {expected}")


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ({"$match": {}}, "stage 1: the last stage must be a $project keeping _id and objectId"),
        ({"$addFields": {"annotations": {}}}, "the last stage must be a $project"),
        (
            {"$project": {"candidate": 0}},
            "stage 1: the last $project must name the fields it keeps",
        ),
        ({"$project": {"annotations": 1}}, "stage 1: $project keeps fields but not objectId"),
        ({"$project": {"_id": 0, "objectId": 1}}, "stage 1: $project drops _id"),
    ],
)
def test_last_stage_must_be_a_project_keeping_id_and_objectid(last, expected):
    refused([CUT, last], expected)


def test_references_to_the_temporary_join_are_refused():
    stage = {"$match": {"aux.cross_matches.vsx.0": {"$exists": False}}}
    refused(
        [stage, LAST], "stage 0: aux.cross_matches.vsx.0 reads the broker's temporary 'aux' join"
    )
    refused(
        [CUT, {"$set": {"n": {"$size": "$aux.prv_candidates"}}}, LAST],
        "refer to prv_candidates instead",
    )


# --- aux detection -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "fields"),
    [
        ([CUT, LAST], []),
        ([{"$match": {"cross_matches.vsx.0": {"$exists": False}}}, LAST], ["cross_matches"]),
        ([{"$set": {"n": {"$max": "$prv_candidates.magpsf"}}}], ["prv_candidates"]),
        ([{"$set": {"n": {"$size": "$$ROOT.fp_hists"}}}], ["fp_hists"]),
        ([{"$project": {"prv_nondetections": 1, "objectId": 1}}], ["prv_nondetections"]),
        ([{"$set": {"n": {"$literal": "$prv_candidates"}}}], []),
        ([{"$set": {"prv_candidatesX": "$candidate.prv_candidates"}}], []),
        (REALISTIC, ["prv_candidates", "cross_matches"]),
    ],
)
def test_aux_fields_are_found_as_paths_and_keys(pipeline, fields):
    assert aux_fields_in(pipeline) == fields
    assert uses_aux(pipeline) == bool(fields)


def test_aux_history_fields_match_what_ingest_stores():
    assert AUX_HISTORY_FIELDS == HISTORY_FIELDS


# --- the pipeline the broker runs -------------------------------------------


def test_match_on_batch_and_permissions_comes_first_without_lookup_when_unneeded():
    pipeline = run_pipeline([CUT, LAST], candids=[11, 12], programids=[1, 2], survey=ZTF)
    assert pipeline == [batch_match([11, 12], [1, 2], ZTF.permissions), CUT, LAST]
    assert pipeline[0] == {
        "$match": {"_id": {"$in": [11, 12]}, "candidate.programid": {"$in": [1, 2]}}
    }


def test_lookup_is_added_before_the_first_stage_reading_aux():
    pipeline = run_pipeline(REALISTIC, candids=[11], programids=[1], survey=ZTF)
    operators = [next(iter(stage)) for stage in pipeline]
    # the filter's first cuts run before the join, the join before the crossmatch cut
    assert operators == [
        "$match",
        "$match",
        "$addFields",
        "$lookup",
        "$unwind",
        "$addFields",
        "$match",
        "$project",
    ]
    lookup, unwind, lift = pipeline[3:6]
    # (joining only the fields the filter names)
    assert lookup == {
        "$lookup": {
            "from": AUX,
            "localField": "objectId",
            "foreignField": "_id",
            "pipeline": [{"$project": {"prv_candidates": 1, "cross_matches": 1}}],
            "as": "aux",
        }
    }
    # the joined array becomes one document before any field is read from it
    assert unwind == {"$unwind": {"path": "$aux", "preserveNullAndEmptyArrays": True}}
    # the fields are lifted and the joined document dropped in the same stage
    assert set(lift["$addFields"]) == {"prv_candidates", "cross_matches", "aux"}
    assert lift["$addFields"]["aux"] == "$$REMOVE"
    assert pipeline[-2:] == REALISTIC[2:]


def test_lifted_history_keeps_permitted_points_before_the_alert():
    pipeline = run_pipeline(
        [{"$match": {"prv_candidates.1": {"$exists": True}}}, LAST],
        candids=[11],
        programids=[1, 3],
        survey=ZTF,
    )
    lifted = pipeline[3]["$addFields"]["prv_candidates"]["$filter"]
    assert lifted["input"] == {"$ifNull": ["$aux.prv_candidates", []]}
    conditions = lifted["cond"]["$and"]
    assert {"$in": ["$$point.programid", [1, 3]]} in conditions
    assert {"$lte": ["$$point.jd", "$candidate.jd"]} in conditions
    window = {"$lt": [{"$subtract": ["$candidate.jd", "$$point.jd"]}, HISTORY_WINDOW_DAYS]}
    assert window in conditions


def test_lifted_crossmatches_default_to_an_empty_document():
    pipeline = run_pipeline(
        [{"$match": {"cross_matches.vsx.0": {"$exists": False}}}, LAST],
        candids=[1],
        programids=[1],
        survey=ZTF,
    )
    lifted = {"cross_matches": {"$ifNull": ["$aux.cross_matches", {}]}, "aux": "$$REMOVE"}
    assert pipeline[3] == {"$addFields": lifted}
    # the join happens before the user's first stage, which reads it
    assert next(iter(pipeline[1])) == "$lookup"


def test_run_pipeline_does_not_change_the_filter():
    pipeline = json.loads(json.dumps(REALISTIC))
    run_pipeline(pipeline, candids=[1], programids=[1], survey=ZTF)
    assert pipeline == REALISTIC

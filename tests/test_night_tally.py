"""The night report's arithmetic and the demo's example filters, without servers."""

from __future__ import annotations

from boom_tasks.conductor.counters import STAGES, StageNight
from boom_tasks.conductor.demo import FILTER_DOCS, example_filters
from boom_tasks.conductor.tally import Gap, gaps, problems, totals
from boom_tasks.conductor.whereabouts import Found, locate
from boom_tasks.filter.validate import validate_pipeline
from boom_tasks.surveys.lsst import LSST
from boom_tasks.surveys.ztf import ZTF


def _night(**per_stage: dict[str, tuple[int, int]]) -> dict[str, StageNight]:
    night = {s: StageNight(s) for s in STAGES}
    for stage, batches in per_stage.items():
        for receipt, (handled, sent) in batches.items():
            night[stage].handled[receipt] = handled
            night[stage].sent[receipt] = sent
    return night


def _clean() -> dict[str, StageNight]:
    # Two batches: 10 packets (1 quarantined, 9 stored, 3 pass) and 5 packets (none pass)
    night = _night(
        received={"a": (10, 10), "b": (5, 5)},
        ingested={"a": (10, 9), "b": (5, 5)},
        crossmatched={"a": (9, 9), "b": (5, 5)},
        enriched={"a": (9, 9), "b": (5, 5)},
        filtered={"a": (9, 3), "b": (5, 0)},
        published={"a": (3, 3)},
    )
    night["received"].offsets = {"t:0": (100, 115)}
    night["ingested"].quarantined = {"a": 1}
    night["filtered"].by_filter = {"f1": 3}
    night["published"].by_filter = {"f1": 3}
    return night


def test_a_clean_night_has_no_gap_and_no_problem():
    night = _clean()
    t = totals(night)
    assert (t.kafka, t.queued, t.ingested, t.quarantined, t.duplicates) == (15, 15, 14, 1, 0)
    assert (t.crossmatched, t.enriched, t.filtered, t.passed, t.published) == (14, 14, 14, 3, 3)
    assert gaps(night) == [] and problems(t, []) == []


def test_a_batch_missing_at_a_stage_is_a_gap_there_and_a_problem():
    # Given batch "b" never handled by ml (its message waits, or was lost)
    night = _clean()
    del night["enriched"].handled["b"], night["enriched"].sent["b"]
    del night["filtered"].handled["b"], night["filtered"].sent["b"]
    found = gaps(night)
    # Then the gap names the batch, the stage and the 5 alerts it owes
    assert [(g.receipt, g.stage, g.missing) for g in found] == [("b", "enriched", 5)]
    assert "crossmatched 14 != enriched 9" in problems(totals(night), found)


def test_passes_not_published_are_a_problem_per_filter():
    night = _clean()
    night["published"].handled["a"] = 2
    night["published"].by_filter = {"f1": 2}
    found = gaps(night)
    said = problems(totals(night), found)
    assert [(g.stage, g.missing) for g in found] == [("published", 1)]
    assert "filter f1: 3 new passes != 2 published" in said
    assert "alerts passing a filter 3 != alerts published 2" in said


def test_kafka_offsets_that_do_not_match_the_queued_count_are_flagged():
    night = _clean()
    night["received"].offsets = {"t:0": (100, 117)}
    assert problems(totals(night), []) == ["Kafka offsets span 17 alerts but the bridge queued 15"]


def test_the_docs_example_filters_are_found_named_and_valid():
    text = FILTER_DOCS.read_text()
    ztf = dict(example_filters(text, ZTF))
    assert set(ztf) == {"fast transient", "known variable star"}
    for pipeline in ztf.values():
        assert validate_pipeline(pipeline, aux_collection=ZTF.aux) == pipeline
    # The LSST example reads ZTF's matches: written for LSST, not for ZTF
    assert len(example_filters(text, LSST)) == len(ztf) + 1


def test_a_batch_owed_to_the_filters_is_found_in_the_science_queue_before_them():
    # Given a batch the filters never ran, whose message waits in ztf_science
    # (science sits between ML and the filters and stamps nothing)
    gap = Gap(receipt="r1", stage="filtered", expected=3, handled=0)
    index = {("science", "r1"): Found("ztf_science", "waiting", [3, 1, 2])}
    # When the report locates it (the message names the candids: Valkey is not read)
    (stop,) = locate(None, "ZTF", "ztf", "20240617", [gap], index, limit=10)  # type: ignore[arg-type]
    # Then it is named waiting in the science queue, not lost
    assert (stop.queue, stop.state, stop.candids) == ("ztf_science", "waiting", [1, 2, 3])

"""History merging: de-duplication by jd, order independence, idempotence (no servers)."""

from boom_tasks.alert.base import History
from boom_tasks.ingest.history import history_changed, merge_history, merge_points


def test_points_are_deduplicated_by_jd_and_sorted():
    merged = merge_points([{"jd": 3.0, "m": 1}], [{"jd": 1.0, "m": 2}, {"jd": 3.0, "m": 1}])
    assert merged == [{"jd": 1.0, "m": 2}, {"jd": 3.0, "m": 1}]


def test_the_richer_copy_of_a_point_wins_and_the_other_fills_its_gaps():
    # Given the stored summary of a detection and the full candidate record it came from
    summary = {"jd": 1.0, "candid": 7, "magpsf": 18.0001, "isdiffpos": "1", "drb": None}
    full = {"jd": 1.0, "candid": 7, "magpsf": 18.0, "isdiffpos": "t", "drb": 0.9, "ndethist": 3}
    # When merged in either order, Then the full record wins whole
    assert merge_points([summary], [full]) == [full]
    assert merge_points([full], [summary]) == [full]


def test_on_a_tie_the_stored_copy_wins_and_only_gaps_are_filled():
    stored = [{"jd": 1.0, "a": 1, "b": None}]
    incoming = [{"jd": 1.0, "a": 2, "b": 5}]
    assert merge_points(stored, [{"jd": 1.0, "a": 2, "b": None}]) == stored
    assert merge_points(stored, incoming) == [{"jd": 1.0, "a": 2, "b": 5}]  # richer wins


def test_two_detections_in_one_exposure_are_both_kept():
    a = {"jd": 5.0, "candid": 2447435035615015004, "magpsf": 14.98}
    b = {"jd": 5.0, "candid": 2447435035615015005, "magpsf": 14.90}
    nondet = {"jd": 4.0, "candid": None, "diffmaglim": 20.1}
    assert merge_points([b], [a, nondet, b]) == [nondet, a, b]


def test_merge_is_order_independent_and_idempotent():
    a = History(prv_candidates=[{"jd": 1.0, "x": 1}, {"jd": 2.0, "x": None}])
    b = History(prv_candidates=[{"jd": 2.0, "x": 2}], prv_nondetections=[{"jd": 0.5}])
    ab = merge_history(None, [a, b])
    ba = merge_history(None, [b, a])
    assert ab == ba
    stored = {"_id": "ZTF1", **ab}
    again = merge_history(stored, [a, b])
    assert again == ab
    assert not history_changed(stored, again)
    assert history_changed(None, ab)
    assert history_changed(stored, merge_history(stored, [History(fp_hists=[{"jd": 9.0}])]))

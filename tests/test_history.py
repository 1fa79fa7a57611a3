"""History merging: de-duplication by jd, order independence, idempotence (no servers)."""

from boom_tasks.alert.base import History
from boom_tasks.ingest.history import history_changed, merge_history, merge_points


def test_points_are_deduplicated_by_jd_and_sorted():
    merged = merge_points([{"jd": 3.0, "m": 1}], [{"jd": 1.0, "m": 2}, {"jd": 3.0, "m": 1}])
    assert merged == [{"jd": 1.0, "m": 2}, {"jd": 3.0, "m": 1}]


def test_a_fuller_record_fills_missing_fields_but_never_overwrites():
    stored = [{"jd": 1.0, "magpsf": 18.0, "drb": None}]
    incoming = [{"jd": 1.0, "magpsf": 99.0, "drb": 0.9, "extra": 1}]
    assert merge_points(stored, incoming) == [{"jd": 1.0, "magpsf": 18.0, "drb": 0.9, "extra": 1}]


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

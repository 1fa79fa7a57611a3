import time

from boom_tasks.bridge.batcher import Batcher


def test_batch_is_due_when_full_and_tracks_next_offsets():
    b = Batcher(max_size=3, max_wait_s=60)
    assert not b.due()
    b.add("t", 0, 10, b"a")
    b.add("t", 1, 5, b"b")
    assert not b.due()
    b.add("t", 0, 11, b"c")
    assert b.due() and b.full()
    batch = b.take()
    assert batch.packets == [b"a", b"b", b"c"]
    assert batch.next_offsets == {("t", 0): 12, ("t", 1): 6}
    assert batch.received_at is not None
    assert len(b.batch) == 0 and not b.due()


def test_partial_batch_is_due_after_the_wait():
    b = Batcher(max_size=100, max_wait_s=0.05)
    b.add("t", 0, 0, b"a")
    assert not b.due()
    time.sleep(0.06)
    assert b.due()
    assert b.remaining_wait() == 0.0

"""The Valkey batch store and the retry policy of actors (real Valkey)."""

import dataclasses

import pytest

from boom_tasks.batches import complete_batch, load_batch, pending_alerts, store_batch
from boom_tasks.broker import actor_options
from boom_tasks.errors import BatchVanished, PermanentError, ServiceUnavailable
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import WorkerSettings
from boom_tasks.surveys.ztf import ZTF


@pytest.mark.services
def test_batch_round_trip_and_done_marker(services, unique):
    survey = dataclasses.replace(ZTF, name=f"B{unique}", topic_template="b_{date}")
    client = get_client(services.valkey)
    ref = store_batch(client, survey, [b"a", b"bb", b"ccc"], ttl_s=3600)
    assert ref.count == 3 and client.ttl(ref.key) > 3000
    assert load_batch(client, ref.key) == [b"a", b"bb", b"ccc"]
    assert pending_alerts(client, survey) == 3
    complete_batch(client, survey, ref.key)
    # A redelivered message after completion is recognised, not reported lost
    assert load_batch(client, ref.key) is None
    assert pending_alerts(client, survey) == 0
    with pytest.raises(BatchVanished, match="NOT ingested"):
        load_batch(client, ref.key.replace(ref.key[-6:], "zzzzzz"))


def test_unreachable_valkey_is_a_transient_error():
    from boom_tasks.settings import ValkeySettings

    client = get_client(ValkeySettings(port=1))
    with pytest.raises(ServiceUnavailable, match="Valkey unavailable"):
        pending_alerts(client, dataclasses.replace(ZTF, name="X", topic_template="x"))


def test_only_transient_errors_are_retried_and_only_max_retries_times():
    retry_when = actor_options(WorkerSettings(max_retries=3))["retry_when"]
    assert retry_when(0, ServiceUnavailable("down"))
    assert not retry_when(3, ServiceUnavailable("down"))
    assert not retry_when(0, PermanentError("bad"))
    assert not retry_when(0, BatchVanished("gone"))
    assert not retry_when(0, ValueError("bug"))

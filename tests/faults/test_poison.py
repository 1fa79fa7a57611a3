"""Poison messages on real workers: an alert that kills its worker is quarantined, not looped.

The fault hooks SIGKILL the worker process that receives one chosen alert (by
candid after ingest, by a marker in its packet at ingest). With
``worker.max_deliveries`` 1, the poison guard splits each batch holding it in
halves until the alert stands alone, then quarantines it with the reason; every
other alert of its batches goes through the chain.
"""

from __future__ import annotations

import time

import pytest

from boom_tasks.batches import store_batch
from boom_tasks.broker import setup_broker
from boom_tasks.chain import declare_chain
from boom_tasks.ingest.stage import ingest_packets
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys.ztf import ZTF
from tests.alerts import packet_paths, read_packet
from tests.chainrun import drained
from tests.faults import procs

pytestmark = pytest.mark.services

MARKER = b"POISON-PACKET-MARKER"


def test_poison_alerts_are_quarantined_and_the_rest_of_their_batches_processed(
    services, mongo_db, clean_chain, tmp_path
):
    packets = [read_packet(p) for p in packet_paths("kowalski")[:8]]
    # Given 4 alerts already ingested, the third of which kills any worker at crossmatch
    candids = ingest_packets(mongo_db, ZTF, packets[:4], "poison").candids
    culprit = candids[2]
    # And an ingest batch of 4 packets, the last of which kills any worker at ingest
    poisoned = packets[7] + MARKER
    ref = store_batch(get_client(services.valkey), ZTF, [*packets[4:7], poisoned], 3600)
    env = {
        "BOOM_FAULT_KILL_CANDID": str(culprit),
        "BOOM_FAULT_KILL_MARKER": MARKER.decode(),
        "BOOM_WORKER__MAX_DELIVERIES": "1",
        "BOOM_WORKER__RESTART_BACKOFF_S": "0.2",
        "BOOM_WORKER__MAX_RESTART_BACKOFF_S": "1",
    }
    supervisor = procs.start_supervisor(2, env=env, log=tmp_path / "workers.log")
    try:
        # When both batches are sent to supervised workers
        actors = declare_chain(setup_broker(services), [ZTF], services)["ZTF"]
        actors["crossmatch"].send(candids, {"received": time.time()})
        actors["ingest"].send(ref.key, ref.count, time.time())
        # Then both culprits end in quarantine, each with its reason
        procs.wait_for(
            "both poison alerts quarantined",
            lambda: mongo_db[ZTF.quarantine].count_documents({}) >= 2,
            timeout=300,
            every=1,
        )
        drained([ZTF], timeout=240)
    finally:
        procs.stop_supervisor(supervisor)
    log = (tmp_path / "workers.log").read_text()
    by_stage = {d.get("stage", "ingest"): d for d in mongo_db[ZTF.quarantine].find()}
    assert set(by_stage) == {"ztf_crossmatch", "ingest"}, by_stage
    assert by_stage["ztf_crossmatch"]["candid"] == culprit
    assert by_stage["ztf_crossmatch"]["reason"].startswith("poison: the worker process died 1 ")
    assert by_stage["ingest"]["packet"] == poisoned
    assert "in ingest" in by_stage["ingest"]["reason"]
    # And every other alert went through the whole chain (ML enriched it)
    others = [c for c in candids if c != culprit]
    others += ingest_packets(mongo_db, ZTF, packets[4:7], "check").candids
    enriched = mongo_db[ZTF.alerts].count_documents(
        {"_id": {"$in": others}, "enriched_at": {"$exists": 1}}
    )
    assert enriched == 6
    # And the culprit was never enriched; each split and each death is in the log
    assert not mongo_db[ZTF.alerts].find_one({"_id": culprit, "enriched_at": {"$exists": 1}})
    assert log.count("split a poison batch") == 2  # 4 candids -> 2 -> 1
    assert log.count("split poison batch") == 2  # 4 packets -> 2 -> 1
    assert log.count("exited with code") == 6  # three deaths per culprit, no more

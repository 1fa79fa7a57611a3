"""The CI-sized fault run: a few hundred real-derived alerts and malformed packets through
the whole chain while workers, their parents, the bridge and Valkey are SIGKILLed.

The full run (thousands of alerts, ten kills, Kafka and MongoDB restarts) is
``bench/faults.py``; both drive :class:`tests.faults.chaos.ChaosRun`.
"""

from __future__ import annotations

import pytest

from tests.faults.chaos import BRIDGE, PARENT, VALKEY, WORKER, ChaosRun, RunConfig, format_faults
from tests.faults.checks import KINDS, format_figures

pytestmark = pytest.mark.services

#: Seconds within which the broker must be processing again after each fault.
RECOVERY_BOUND_S = 60


def test_a_night_with_killed_workers_bridge_and_valkey_loses_and_doubles_nothing(
    services, tmp_path
):
    # Given 300 alerts and 35 malformed packets of every kind on a topic, 5 active filters
    config = RunConfig(
        alerts=300,
        malformed=5 * len(KINDS),
        faults=[(WORKER, 0.15), (BRIDGE, 0.3), (VALKEY, 0.45), (PARENT, 0.65)],
        timeout_s=600,
    )
    # When they go through the chain while a worker, the bridge, Valkey (AOF on) and
    # a worker's dramatiq parent are SIGKILLed in turn
    result = ChaosRun(services, config, tmp_path).run()
    print(format_figures(result.figures))
    print(format_faults(result.faults))
    f = result.figures
    # Then every real alert is stored once, enriched and filtered; every pass is
    # published exactly once; no queue holds work; no dead letter is unexplained
    assert f.alerts_lost == 0 and f.duplicated_documents == 0 and f.not_enriched == 0
    assert f.passes_missing == 0 and f.passes > 0
    assert f.unpublished == 0 and f.duplicated_messages == 0
    assert f.queued_left == 0 and f.unexplained_dead_letters == 0
    # And every malformed packet is quarantined (or, a harmless bit flip, decoded), no
    # real alert is, and no worker died but those killed
    assert f.malformed_unaccounted == 0 and f.real_quarantined == 0
    assert sum(n["quarantined"] for n in f.malformed_by_kind.values()) >= 4 * len(KINDS)
    killed = sum(1 for x in result.faults if x.kind in (WORKER, PARENT))
    assert result.worker_exits == killed
    # And the broker was processing again within the bound after each fault
    for fault in result.faults:
        assert fault.struck is not None, fault
        assert fault.recovered_s is not None and fault.recovered_s < RECOVERY_BOUND_S, fault

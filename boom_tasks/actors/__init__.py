"""The workers' entry point: ``dramatiq boom_tasks.actors``.

Dramatiq imports this module to start a worker process, so importing it IS the
process start: it reads the settings once, builds the Valkey broker (which must
exist before any actor is declared) and declares the chain of every registered
survey on it (:mod:`boom_tasks.actors.chain`): ``<survey>_ingest`` →
``_crossmatch`` → ``_ml`` → ``_filter`` → ``_output``. Other processes (the
bridge, tests) call :func:`~boom_tasks.actors.chain.declare_chain` themselves
and never import this module.
"""

from boom_tasks.actors.startup import WorkerStartup
from boom_tasks.broker import setup_broker
from boom_tasks.chain import declare_chain
from boom_tasks.monitor.costs import StageCosts
from boom_tasks.replays.actor import declare_replays
from boom_tasks.settings import get_settings
from boom_tasks.surveys import SURVEYS

settings = get_settings()
broker = setup_broker(settings)
ACTORS = declare_chain(broker, SURVEYS.values(), settings)
# Replays run on their own low-priority queues (<survey>_replay), beside the chain.
REPLAY_ACTORS = declare_replays(broker, list(SURVEYS.values()), settings)
broker.add_middleware(WorkerStartup(settings))
# Each message's CPU (and database) cost, per survey and stage, for /metrics.
broker.add_middleware(StageCosts(settings, SURVEYS.values()))

__all__ = ["ACTORS", "REPLAY_ACTORS", "broker"]

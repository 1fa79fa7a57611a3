"""Every pipeline stage as a Dramatiq actor: ``dramatiq boom_tasks.actors``.

Importing this module sets up the Valkey broker (which must exist before any
actor is declared), then declares each stage's actors, one per survey:
``ztf_ingest`` → ``ztf_crossmatch`` → ``ztf_ml`` → ``ztf_filter`` → ``ztf_output``.
Each stage module imports the next one, whose actor it sends to.
"""

from boom_tasks.broker import setup_broker
from boom_tasks.settings import get_settings

broker = setup_broker(get_settings())

from boom_tasks.actors.crossmatch import CROSSMATCH  # noqa: E402
from boom_tasks.actors.filter import FILTER  # noqa: E402
from boom_tasks.actors.ingest import INGEST  # noqa: E402
from boom_tasks.actors.ml import ML  # noqa: E402
from boom_tasks.actors.output import OUTPUT  # noqa: E402
from boom_tasks.actors.startup import WorkerStartup  # noqa: E402

broker.add_middleware(WorkerStartup(get_settings()))

__all__ = ["CROSSMATCH", "FILTER", "INGEST", "ML", "OUTPUT", "broker"]

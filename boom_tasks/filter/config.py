"""Settings of the filter stage."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class FilterSettings(Section):
    """How users' filters run."""

    #: Milliseconds one filter may run on one batch of up to 1000 alerts (MongoDB
    #: ``maxTimeMS``; also checked on the wall clock). Generous on purpose: it is there to
    #: stop a pathological filter, not a slow server. Measured on SecantusDB (the local
    #: stand-in) under load: 0.5-3 s for a candidate-only filter, ~5 s with the aux
    #: ``$lookup``; a 2 s budget deactivated all 25 benchmark filters in 3 batches.
    time_budget_ms: int = Field(30_000, ge=10)
    #: Consecutive failed batches (over budget, or refused by the database) after which
    #: a filter is deactivated, with the reason recorded in its document.
    max_failures: int = Field(3, ge=1)
    #: Largest fraction of a reference night's alerts a filter may pass to be activated
    #: (BOOM's ``max_match_rate``): a filter passing everything floods its subscribers.
    max_match_rate: float = Field(0.05, gt=0, le=1)
    #: Candids per aggregation: a filter runs on a batch in chunks of this many. One
    #: ``$in`` of 1,000 ids costs SecantusDB (list length x matches); measured on 1,000
    #: benchmark alerts, a candidate-only filter took 7.8 / 2.8 / 2.8 s in chunks of
    #: 1,000 / 100 / 50, one with the aux ``$lookup`` 31.2 / 9.0 / 8.0 s. On MongoDB a
    #: whole batch per query (1,000) saves round trips.
    candids_per_query: int = Field(100, ge=1)
    #: Run the filters sharing the broker's stages (programids, aux join) as one
    #: aggregation per chunk, one ``$facet`` sub-pipeline each (docs/filters.md, "How
    #: filters are run"). Measured on 1,000 real alerts, 20 candidate-only filters took
    #: 4.7 s one at a time and 1.3 s together on SecantusDB. Off: one aggregation per filter.
    grouped: bool = True
    #: Every this many batches, a filter worker runs each filter alone, to measure each
    #: filter's own cost and hold it to ``time_budget_ms`` (0: never). A grouped run
    #: charges each filter an equal share of the group's time.
    solo_every: int = Field(50, ge=0)
    #: Seconds a filter worker trusts its loaded filters even if no change is signalled.
    reload_s: float = Field(60.0, gt=0)

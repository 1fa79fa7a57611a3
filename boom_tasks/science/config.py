"""Settings of the science stage (``science:`` in the configuration)."""

from __future__ import annotations

from pydantic import Field

from boom_tasks.config_base import Section


class ScienceSettings(Section):
    """Which science actors run, and how a failing one is stopped."""

    #: Enabled actors: module names under the top-level ``actors/`` package
    #: (``exgal_transients``), or a full dotted module path (``mylab.actors.kn``).
    #: The shipped module runs by default; ``[]`` removes the science hop entirely.
    actors: list[str] = ["exgal_transients"]
    #: Consecutive failed batches (an error, an over-budget run or a malformed result)
    #: after which an actor is disabled, with the reason stored in ``science_actors``.
    max_failures: int = Field(3, ge=1)
    #: Candids per read of the alerts and their objects (see ``mongo.IN_CHUNK``).
    candids_per_query: int = Field(100, ge=1)
    #: Base URL of the HTTP API, for the figure links in science output messages.
    api_url: str = "http://127.0.0.1:4000"

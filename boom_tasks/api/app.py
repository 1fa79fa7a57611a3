"""The FastAPI application: routes, error answers, OpenAPI docs at ``/docs``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from boom_tasks.api import auth, catalogs, cone, cutouts, filters, pictures, queries, science
from boom_tasks.api.context import ApiState
from boom_tasks.api.encoding import BsonJSONResponse, envelope
from boom_tasks.api.errors import install_handlers
from boom_tasks.settings import Settings, get_settings

#: What /docs shows above the routes.
DESCRIPTION = """\
Query the boom-tasks broker's database: alerts, their history, cutouts and the
archival catalogs. Built to work with BOOM's Python client, `boom-client`.

Log in with `POST /auth` (the **Authorize** button here does it), then send the
token as `Authorization: Bearer <token>`. Every query is bounded in time
(`max_time_ms`) and answer size; write stages (`$out`, `$merge`) and server-side
JavaScript are refused.
"""


def _version() -> str:
    try:
        return version("boom-tasks")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the API application for ``settings`` (default: this process's settings).

    No database connection is opened here: the client is created on the first request.
    """
    app = FastAPI(
        title="boom-tasks API",
        version=_version(),
        description=DESCRIPTION,
        docs_url="/docs",
        default_response_class=BsonJSONResponse,
    )
    app.state.boom = ApiState(settings or get_settings())
    install_handlers(app)
    for module in (auth, queries, cone, catalogs, cutouts, pictures, filters, science):
        app.include_router(module.router)

    @app.get("/", tags=["Info"], summary="Health check (no token needed)")
    def root() -> BsonJSONResponse:
        """Answer that the API is up, with its version."""
        return envelope("boom-tasks API is running", {"version": app.version})

    return app

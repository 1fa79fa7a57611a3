"""Settings of the HTTP API (``boom-api``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from boom_tasks.config_base import Section

#: Shortest signing key accepted: HMAC-SHA256 wants at least its 32-byte output size.
MIN_SECRET_LENGTH = 32


class ApiSettings(Section):
    """The HTTP API that boom-client and users' scripts query."""

    #: Address uvicorn binds. Loopback by default: publish it through a reverse proxy
    #: that terminates TLS, since tokens and passwords travel in the requests.
    host: str = "127.0.0.1"
    #: boom-client's ``BOOM_ENV=local`` points at http://localhost:4000.
    port: int = Field(4000, ge=1, le=65535)
    #: Seconds a token from ``POST /auth`` stays valid; boom-client logs in again a
    #: minute before it expires, and after any 401.
    token_ttl_s: int = Field(12 * 3600, ge=120)
    #: Key signing the tokens (HMAC-SHA256), at least 32 characters. None: a random
    #: key at each start, so tokens die with the process and a second API process
    #: rejects the first one's. Production must set it, through the environment
    #: (``BOOM_API__SECRET``), never in a YAML file kept in the repository.
    secret: str | None = Field(None, min_length=MIN_SECRET_LENGTH)
    #: Milliseconds a query may run when the request names no ``max_time_ms``
    #: (BOOM's 30 s; boom-client sends 60,000 itself).
    default_max_time_ms: int = Field(30_000, ge=1)
    #: Largest ``max_time_ms`` a request may ask for: one user must not hold a
    #: database thread for hours.
    max_time_ms_cap: int = Field(600_000, ge=1)
    #: Largest answer, in bytes of the documents as BSON (BOOM's 256 MiB). Beyond it
    #: the request is refused with a 400 asking for a limit, paging or a projection,
    #: instead of the API building a response that exhausts its memory.
    max_answer_bytes: int = Field(256 * 2**20, ge=1024)
    #: Positions in one cone search request (boom-client splits larger searches here).
    max_cone_positions: int = Field(10_000, ge=1)
    #: HEALPix cells (at the catalog's order) all cones of one request may cover. Each
    #: cell is an index lookup: 100,000 cells is about a 10-degree radius at order 10,
    #: seconds on MongoDB; a 30-degree cone (840,000 cells) took 65 s on SecantusDB.
    max_cone_cells: int = Field(100_000, ge=1)
    #: Failed logins of one account, within ``login_window_s``, after which ``POST /auth``
    #: answers 429 until the oldest leaves the window (per API process).
    login_max_failures: int = Field(10, ge=1)
    login_window_s: float = Field(300.0, gt=0)
    #: Catalogs (collection names, ``fnmatch`` patterns) a user created without
    #: ``--catalogs`` may read. Operational collections stay admin-only regardless,
    #: and the ``users`` collection is never served (see ``boom_tasks.api.access``).
    default_catalogs: list[str] = ["*"]

    @model_validator(mode="after")
    def _cap_covers_default(self) -> ApiSettings:
        if self.default_max_time_ms > self.max_time_ms_cap:
            raise ValueError("default_max_time_ms must not exceed max_time_ms_cap")
        return self

"""Errors of the API and the one place they become HTTP answers.

Every error answer is ``{"message": "..."}``. A user's mistake (a malformed
query, one the database refuses, one over a limit) is a 400 carrying the
reason, never a 500: boom-client does not retry a 400, and the message tells
the user what to change. A 500 says only that the server failed; its details
(driver messages, addresses, stack traces) go to the server's log alone.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from boom_tasks.api.encoding import BsonJSONResponse, ExtendedJsonError
from boom_tasks.errors import (
    BoomError,
    QueryRejected,
    QueryTimeout,
    ServiceUnavailable,
    UnknownSurvey,
)
from boom_tasks.filter.errors import FilterForbidden, FilterInvalid, FilterNotFound, FilterRefused
from boom_tasks.filter.testing import MatchRateTooHigh

log = logging.getLogger(__name__)


class ApiError(BoomError):
    """An error answered with ``status``, its message and ``headers``."""

    status = 500
    headers: dict[str, str] | None = None


class BadRequest(ApiError):
    """The request cannot be run as sent (400): the message says why."""

    status = 400


class Unauthorized(ApiError):
    """No valid bearer token, or wrong credentials at ``/auth`` (401)."""

    status = 401


class NotFound(ApiError):
    """No such catalog or document, *or* one the user may not read (404, as BOOM answers)."""

    status = 404


def _answer(status: int, message: str, headers: dict[str, str] | None = None) -> BsonJSONResponse:
    return BsonJSONResponse({"message": message}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> BsonJSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else exc.headers
    return _answer(exc.status, str(exc), headers)


async def _rejected(request: Request, exc: Exception) -> BsonJSONResponse:
    # The database's own message ("unknown operator: $gtE") is the user's best hint.
    return _answer(400, f"query refused by the database: {exc}")


async def _malformed(request: Request, exc: Exception) -> BsonJSONResponse:
    # Raised before any query: the database never saw it, so not "refused by the database".
    return _answer(400, str(exc))


async def _timeout(request: Request, exc: Exception) -> BsonJSONResponse:
    return _answer(
        400,
        f"the query {exc}: narrow the filter, use indexed fields (GET /catalogs/NAME/indexes) "
        "or ask for a larger max_time_ms",
    )


#: The status of each error of the command layer (boom_tasks.filter.commands): its
#: message is the command line's, word for word.
COMMAND_STATUS: dict[type[BoomError], int] = {
    FilterInvalid: 400,
    FilterRefused: 400,
    MatchRateTooHigh: 400,
    UnknownSurvey: 400,
    FilterForbidden: 403,
    FilterNotFound: 404,
}


async def _command_error(request: Request, exc: Exception) -> BsonJSONResponse:
    status = next(s for kind, s in COMMAND_STATUS.items() if isinstance(exc, kind))
    assert isinstance(exc, BoomError)
    return _answer(status, exc.describe())


async def _unavailable(request: Request, exc: Exception) -> BsonJSONResponse:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    # 503 is what boom-client retries with backoff: right for a briefly absent database.
    return _answer(503, "the database is unavailable; retry in a moment")


async def _invalid(request: Request, exc: Exception) -> BsonJSONResponse:
    assert isinstance(exc, RequestValidationError)
    # loc and msg only: pydantic's "input" would echo the request back.
    problems = [
        f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
        for e in exc.errors()
    ]
    return _answer(400, "invalid request: " + "; ".join(problems))


async def _http(request: Request, exc: Exception) -> BsonJSONResponse:
    assert isinstance(exc, HTTPException)
    return _answer(exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def _unencodable(request: Request, exc: Exception) -> BsonJSONResponse:
    # JSON allows a lone surrogate escape ("\\ud800"), UTF-8 and so BSON do not: only
    # text the user sent can reach an encoder in a request, so this is their error.
    return _answer(400, "the request holds text with an unpaired surrogate, not valid UTF-8")


async def _failed(request: Request, exc: Exception) -> BsonJSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return _answer(500, "internal server error; the administrators can find it in the log")


def install_handlers(app: FastAPI) -> None:
    """Answer every error raised by a route as ``{"message": ...}`` with its status."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(QueryRejected, _rejected)
    app.add_exception_handler(ExtendedJsonError, _malformed)
    app.add_exception_handler(QueryTimeout, _timeout)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    for kind in COMMAND_STATUS:
        app.add_exception_handler(kind, _command_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(UnicodeEncodeError, _unencodable)
    app.add_exception_handler(Exception, _failed)

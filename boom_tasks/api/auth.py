"""``POST /auth``: user name and password in, bearer token out.

boom-client posts the credentials as a form (``username``, ``password``), as an
OAuth2 password grant does; BOOM's own server reads JSON. Both are accepted.
The answer is ``{"access_token", "token_type", "expires_in"}``: boom-client
renews the token a minute before ``expires_in`` runs out.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from boom_tasks.api.context import StateDep
from boom_tasks.api.encoding import BsonJSONResponse
from boom_tasks.api.errors import BadRequest, Unauthorized
from boom_tasks.api.tokens import issue
from boom_tasks.api.users import authenticate

log = logging.getLogger(__name__)

#: Largest credentials body read: a name and a password, never megabytes.
MAX_BODY_BYTES = 8192

router = APIRouter(tags=["Auth"])

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                    },
                }
            }
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


def _credentials(body: bytes, content_type: str) -> tuple[str, str]:
    """Return ``(username, password)`` from a form or JSON body."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest("credentials body too large")
    try:
        if content_type.startswith("application/json"):
            fields = json.loads(body)
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode(), strict_parsing=False).items()}
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be a form or JSON with username and password") from None
    username, password = (
        fields.get(k) if isinstance(fields, dict) else None for k in ("username", "password")
    )
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise BadRequest("username and password are required")
    if not (_is_unicode(username) and _is_unicode(password)):
        raise BadRequest("username and password must be valid Unicode text")
    return username, password


def _is_unicode(text: str) -> bool:
    """Tell whether ``text`` encodes as UTF-8 (a JSON escape can carry a lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@router.post("/auth", openapi_extra=_BODY_DOC, summary="Exchange credentials for a bearer token")
async def post_auth(request: Request, state: StateDep) -> BsonJSONResponse:
    """Return a bearer token for valid credentials; 401 otherwise."""
    username, password = _credentials(await request.body(), request.headers.get("content-type", ""))
    state.logins.check(username)
    # scrypt costs tens of milliseconds: keep it off the event loop.
    user = await run_in_threadpool(authenticate, state.db(), username, password)
    if user is None:
        state.logins.failed(username)
        log.info("failed login for user %r", username)
        raise Unauthorized("invalid username or password")
    state.logins.succeeded(username)
    ttl = state.settings.api.token_ttl_s
    return BsonJSONResponse(
        {
            "message": "authentication successful",
            "access_token": issue(state.secret, user.name, ttl),
            "token_type": "bearer",
            "expires_in": ttl,
        }
    )

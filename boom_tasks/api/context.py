"""What a route receives: the process's state, and per request the user and their catalogs.

Database clients are not created here but on first use, in the serving process
(:func:`boom_tasks.services.mongo.get_client`), so building the app has no side effect.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from pymongo.database import Database

from boom_tasks.api.access import Catalogs
from boom_tasks.api.errors import Unauthorized
from boom_tasks.api.limits import Limits
from boom_tasks.api.throttle import LoginThrottle
from boom_tasks.api.tokens import TokenInvalid, verify
from boom_tasks.api.users import User, get_user
from boom_tasks.services.mongo import get_catalog_db, get_db
from boom_tasks.settings import Settings

log = logging.getLogger(__name__)

#: Bytes of the signing key drawn when ``api.secret`` is not set.
RANDOM_SECRET_BYTES = 32

#: Reads ``Authorization: Bearer <token>``; ``tokenUrl`` gives the /docs page a login
#: form that posts to /auth, as boom-client does.
bearer = OAuth2PasswordBearer(tokenUrl="auth", auto_error=False)


class ApiState:
    """Settings and signing key of one API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = Limits.from_settings(settings.api)
        self.logins = LoginThrottle(settings.api.login_max_failures, settings.api.login_window_s)
        if settings.api.secret is None:
            log.warning(
                "api.secret is not set: tokens are signed with a random key and die with "
                "this process; set BOOM_API__SECRET in production"
            )
            self.secret = secrets.token_bytes(RANDOM_SECRET_BYTES)
        else:
            self.secret = settings.api.secret.encode()

    def db(self) -> Database:
        """Return the broker's database (users, alerts)."""
        return get_db(self.settings.mongo)

    def catalog_db(self) -> Database:
        """Return the archival catalogs' database."""
        return get_catalog_db(self.settings.mongo)


@dataclass(frozen=True)
class Ctx:
    """One authenticated request: who asks, what they may read, within which bounds."""

    user: User
    catalogs: Catalogs
    limits: Limits
    state: ApiState


def get_state(request: Request) -> ApiState:
    """Return the process's :class:`ApiState` (set by the app factory)."""
    state: ApiState = request.app.state.boom
    return state


#: A route parameter receiving the process's state.
StateDep = Annotated[ApiState, Depends(get_state)]


def current_user(token: Annotated[str | None, Depends(bearer)], state: StateDep) -> User:
    """Return the user of the request's bearer token.

    Raises
    ------
    Unauthorized
        If there is no token, it is invalid or expired, or its user was removed.
    """
    if not token:
        raise Unauthorized("missing bearer token: POST /auth with username and password first")
    try:
        name = verify(state.secret, token)
    except TokenInvalid as e:
        raise Unauthorized(str(e)) from None
    user = get_user(state.db(), name)
    if user is None:
        raise Unauthorized("this token's user no longer exists")
    return user


def get_ctx(user: Annotated[User, Depends(current_user)], state: StateDep) -> Ctx:
    """Return the context of an authenticated request (every route but /auth and /)."""
    catalogs = Catalogs(state.db(), state.catalog_db(), user, state.settings.api.default_catalogs)
    return Ctx(user=user, catalogs=catalogs, limits=state.limits, state=state)


#: A route parameter receiving the authenticated request's context.
CtxDep = Annotated[Ctx, Depends(get_ctx)]

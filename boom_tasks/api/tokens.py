"""Bearer tokens: compact JWTs (RFC 7519) signed with HMAC-SHA256, with the standard library.

A token carries its user name (``sub``), when it was issued (``iat``) and when
it expires (``exp``). It grants nothing by itself: each request still looks the
user up, so a removed account or changed permissions take effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from boom_tasks.errors import BoomError

#: The JWT header of every token: the only algorithm accepted on the way back in,
#: so a token claiming ``"alg": "none"`` is refused, not trusted.
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenInvalid(BoomError):
    """A bearer token is malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def issue(secret: bytes, subject: str, ttl_s: int, now: float | None = None) -> str:
    """Return a token for ``subject`` valid for ``ttl_s`` seconds."""
    iat = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": iat, "exp": iat + ttl_s}
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_sign(secret, f'{head}.{body}')}"


def verify(secret: bytes, token: str, now: float | None = None) -> str:
    """Return the subject of a valid token.

    Raises
    ------
    TokenInvalid
        If the token is malformed, not signed with ``secret``, or expired.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("malformed token")
    head, body, signature = parts
    if not hmac.compare_digest(signature, _sign(secret, f"{head}.{body}")):
        raise TokenInvalid("invalid token signature")
    try:
        header = json.loads(_unb64(head))
        claims: dict[str, Any] = json.loads(_unb64(body))
    except ValueError:
        raise TokenInvalid("malformed token") from None
    if header != _HEADER or not isinstance(claims.get("sub"), str):
        raise TokenInvalid("malformed token")
    now = time.time() if now is None else now
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise TokenInvalid("token expired; POST /auth again")
    return claims["sub"]

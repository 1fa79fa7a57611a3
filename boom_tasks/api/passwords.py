"""Password hashing with scrypt (RFC 7914, in the standard library) and a per-user salt.

Only the salt, the KDF parameters and the derived key are stored; the password
itself is never stored or logged. The parameters travel with each hash, so they
can be raised later without invalidating existing accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

#: scrypt cost parameters: N = 2**14, r = 8, p = 1 is the RFC's interactive-login
#: setting (about 16 MiB and 30-50 ms per check), slow enough to make guessing
#: stolen hashes expensive and fast enough for one check per login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
#: Bytes of the per-user random salt and of the derived key.
SALT_BYTES = 16
KEY_BYTES = 32
#: Name stored with each hash, so another KDF could be introduced beside it.
ALGORITHM = "scrypt"


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem above 128*r*n bytes: hashlib's default (32 MiB) is too tight for some builds.
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=2 * 128 * r * n
    )


def hash_password(password: str) -> dict[str, Any]:
    """Return the stored form of ``password``: algorithm, parameters, salt and key (hex).

    Raises
    ------
    ValueError
        If the password is empty.
    """
    if not password:
        raise ValueError("the password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {
        "algorithm": ALGORITHM,
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": salt.hex(),
        "key": key.hex(),
    }


def verify_password(password: str, stored: dict[str, Any] | None) -> bool:
    """Tell whether ``password`` matches ``stored`` (from :func:`hash_password`).

    With ``stored`` None (no such user) a hash is still computed, so a wrong user
    name takes as long to refuse as a wrong password and does not reveal which
    accounts exist.
    """
    if stored is None or stored.get("algorithm") != ALGORITHM:
        _derive(password, b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False
    key = _derive(password, bytes.fromhex(stored["salt"]), stored["n"], stored["r"], stored["p"])
    return hmac.compare_digest(key, bytes.fromhex(stored["key"]))

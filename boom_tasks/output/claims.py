"""Publication claims: one delivery at a time publishes a given alert.

The output stage skips passes already recorded in ``<survey>_publications``, but two
deliveries holding the same candid at once (a duplicate packet in the stream, a
message redelivered while its first delivery still runs) both read "unpublished"
and both publish: the fault suite counted such doubles. So before reading what is
unpublished, a delivery claims each candid in Valkey, under its Dramatiq message id,
for :data:`CLAIM_TTL_S`. A candid claimed by another delivery is left to it: that
delivery publishes it, or, if its worker dies, its message is redelivered with the
same id and takes its own claim back. A claim is released once the publications
are recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis
from dramatiq.middleware import CurrentMessage

from boom_tasks.services.valkey import valkey_errors
from boom_tasks.surveys.base import Survey

#: Seconds a claim lasts if its holder never releases it (longer than a stage's
#: default time limit, so a live delivery never loses its claim).
CLAIM_TTL_S = 900

#: Claims the candids free or already held by this token; returns their indexes (1-based).
#: KEYS: one claim key per candid. ARGV: token, TTL in seconds.
_CLAIM = """
local mine = {}
for i, key in ipairs(KEYS) do
    local holder = redis.call("get", key)
    if not holder or holder == ARGV[1] then
        redis.call("set", key, ARGV[1], "EX", ARGV[2])
        table.insert(mine, i)
    end
end
return mine
"""

#: Deletes the claims this token holds. KEYS: claim keys. ARGV: token.
_RELEASE = """
for _, key in ipairs(KEYS) do
    if redis.call("get", key) == ARGV[1] then
        redis.call("del", key)
    end
end
return 0
"""


def delivery_token() -> str:
    """Return the id of the Dramatiq message being processed (a fresh id outside a worker).

    The id is the same for every delivery of a message, redeliveries and retries alike.
    """
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else uuid.uuid4().hex


def _keys(survey: Survey, candids: Sequence[int]) -> list[str]:
    return [f"boom:{survey.queue_prefix}:publishing:{c}" for c in candids]


def claim(client: redis.Redis, survey: Survey, candids: Sequence[int], token: str) -> list[int]:
    """Claim ``candids`` for this delivery; return those it now holds, in order.

    Raises
    ------
    ServiceUnavailable
        If Valkey cannot be reached (the stage is retried).
    """
    if not candids:
        return []
    with valkey_errors(f"claiming {survey.name} alerts to publish"):
        held = client.eval(_CLAIM, len(candids), *_keys(survey, candids), token, CLAIM_TTL_S)
    return [candids[int(i) - 1] for i in held]


def release(client: redis.Redis, survey: Survey, candids: Sequence[int], token: str) -> None:
    """Release this delivery's claims on ``candids`` (others' claims are left alone)."""
    if candids:
        with valkey_errors(f"releasing {survey.name} publication claims"):
            client.eval(_RELEASE, len(candids), *_keys(survey, candids), token)

"""JSON in and out of the API: MongoDB's Extended JSON, as BOOM's API speaks it.

Documents go out in *relaxed* Extended JSON: numbers and strings as plain JSON,
and what JSON cannot hold tagged (``{"$date": ...}``, ``{"$binary": ...}``,
``{"$numberDouble": "NaN"}``), so every answer is valid JSON that boom-client's
``response.json()`` reads. Filters, projections and pipelines coming in may use
the same tags (``{"$date": "2024-06-17T00:00:00Z"}``) to query such values.
"""

from __future__ import annotations

import json
from typing import Any

from bson import json_util
from bson.errors import BSONError
from fastapi.responses import JSONResponse

from boom_tasks.errors import BoomError

#: How documents are written: relaxed mode keeps int64 candids as plain JSON numbers.
JSON_OPTIONS = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=True)
#: What bson raises for a tagged value that does not hold what its tag says: an
#: unparsable date or number (ValueError; decimal's InvalidOperation and OverflowError
#: are ArithmeticErrors), a wrong type (TypeError), a missing component (KeyError),
#: a bad ObjectId or an out-of-range date (BSONError).
_MALFORMED = (BSONError, ValueError, TypeError, KeyError, ArithmeticError)
#: Characters of the offending value quoted back in the error message.
_QUOTED_CHARS = 120


class ExtendedJsonError(BoomError):
    """A request's Extended JSON value is malformed (``{"$date": "yesterday"}``)."""


class BsonJSONResponse(JSONResponse):
    """A JSON response whose content may hold BSON types (dates, bytes, ObjectIds, NaN)."""

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` as relaxed Extended JSON."""
        return json_util.dumps(content, json_options=JSON_OPTIONS).encode()


def from_extended_json(value: Any) -> Any:
    """Return ``value`` (parsed JSON) with Extended JSON tags turned into BSON values.

    Parameters
    ----------
    value
        A filter, projection, sort or pipeline as parsed from the request body.

    Raises
    ------
    ExtendedJsonError
        If a tagged value is malformed, quoting it and bson's reason.
    """
    if isinstance(value, dict):
        converted = {key: from_extended_json(item) for key, item in value.items()}
        try:
            return json_util.object_hook(converted, JSON_OPTIONS)
        except _MALFORMED as e:
            quoted = json.dumps(value, default=str)[:_QUOTED_CHARS]
            raise ExtendedJsonError(f"malformed Extended JSON value {quoted}: {e}") from None
    if isinstance(value, list):
        return [from_extended_json(item) for item in value]
    return value


def envelope(message: str, data: Any) -> BsonJSONResponse:
    """Return BOOM's answer shape, ``{"message": ..., "data": ...}`` (boom-client unwraps data)."""
    return BsonJSONResponse({"message": message, "data": data})

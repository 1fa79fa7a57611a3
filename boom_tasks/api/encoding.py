"""JSON in and out of the API: MongoDB's Extended JSON, as BOOM's API speaks it.

Documents go out in *relaxed* Extended JSON: numbers and strings as plain JSON,
and what JSON cannot hold tagged (``{"$date": ...}``, ``{"$binary": ...}``,
``{"$numberDouble": "NaN"}``), so every answer is valid JSON that boom-client's
``response.json()`` reads. Filters, projections and pipelines coming in may use
the same tags (``{"$date": "2024-06-17T00:00:00Z"}``) to query such values.
"""

from __future__ import annotations

from typing import Any

from bson import json_util
from fastapi.responses import JSONResponse

#: How documents are written: relaxed mode keeps int64 candids as plain JSON numbers.
JSON_OPTIONS = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=True)


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
    """
    if isinstance(value, dict):
        converted = {key: from_extended_json(item) for key, item in value.items()}
        return json_util.object_hook(converted, JSON_OPTIONS)
    if isinstance(value, list):
        return [from_extended_json(item) for item in value]
    return value


def envelope(message: str, data: Any) -> BsonJSONResponse:
    """Return BOOM's answer shape, ``{"message": ..., "data": ...}`` (boom-client unwraps data)."""
    return BsonJSONResponse({"message": message, "data": data})

"""How ZTF alerts are published: the results schema and ZTF's ``isdiffpos`` spellings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from boom_tasks.surveys.base import OutputFormat

#: ``isdiffpos`` spellings of a positive (science minus reference) subtraction;
#: ZTF sends 't' or '1', BOOM stores a bool.
_POSITIVE = {"t", "1", "true"}
#: ...and of a negative one.
_NEGATIVE = {"f", "0", "false"}


def normalise_isdiffpos(value: Any) -> str | None:
    """Return 't' for a positive subtraction, 'f' for a negative one, None if unknown.

    ZTF schemas write 't'/'f' or '1'/'0', and BOOM stores a bool; consumers
    then test one spelling. Any other text is passed through unchanged.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if isinstance(value, bool | np.bool_):
        text = "t" if value else "f"
    if text in _POSITIVE:
        return "t"
    if text in _NEGATIVE:
        return "f"
    return str(value)


def with_isdiffpos(point: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a detection with ``isdiffpos`` normalised (if it has one)."""
    out = dict(point)
    if "isdiffpos" in out:
        out["isdiffpos"] = normalise_isdiffpos(out["isdiffpos"])
    return out


#: ``ZTF_alerts_results``: schema ``boom_tasks/output/schema/ztf_results_v1.avsc``;
#: 1.1 added ``survey_matches`` (the LSST object at the alert's position), with a
#: default, so 1.0 readers read 1.1 messages and 1.1 readers read 1.0 messages. 1.2 (its
#: own file, beside 1.1's) added ``provenance``, also with a default.
OUTPUT = OutputFormat(
    schema_file="ztf_results_v1.2.avsc", schema_version="1.2", point=with_isdiffpos
)

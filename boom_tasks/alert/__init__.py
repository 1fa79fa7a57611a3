"""Survey packets → documents. One module per survey; :data:`PARSERS` maps names to them."""

from collections.abc import Callable
from datetime import datetime

from boom_tasks.alert import ztf
from boom_tasks.alert.base import AlertDocs
from boom_tasks.errors import UnknownSurvey

#: Packet parser of each survey: raw bytes and ingestion time → documents.
PARSERS: dict[str, Callable[[bytes, datetime], AlertDocs]] = {"ZTF": ztf.parse_packet}


def get_parser(survey: str) -> Callable[[bytes, datetime], AlertDocs]:
    """Return the packet parser of ``survey`` (raises :class:`UnknownSurvey`)."""
    try:
        return PARSERS[survey]
    except KeyError:
        raise UnknownSurvey(f"no packet parser for survey {survey!r}") from None

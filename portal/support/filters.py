"""The salon list's filter, read from a query string: the dashboard's form and the admin
API's parameters, checked once here, so the store takes typed values only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portal.salons.ids import YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.web.request_input import parse_id, storable_text
from portal.whatsapp.link import LinkStatus

STATUSES = tuple(s.value for s in IntegrationStatus)
LINK_STATUSES = tuple(s.value for s in LinkStatus)


@dataclass(frozen=True)
class SalonFilter:
    status: IntegrationStatus | None = None
    q: str | None = None  # the search box: a YClients id (digits) or part of a name
    page: int = 1
    attention_only: bool = False
    link: LinkStatus | None = None  # the WhatsApp link's status

    @property
    def yclients_salon_id(self) -> YclientsSalonId | None:
        """The search box as a YClients id: digits within bigint."""
        number = parse_id(self.q)
        return YclientsSalonId(number) if number is not None else None

    @property
    def name_part(self) -> str | None:
        """The search box as part of a name: anything that is not an id."""
        return self.q if self.q and self.yclients_salon_id is None else None


class BadFilter(ValueError):
    pass


def parse_filter(params: Mapping[str, str]) -> SalonFilter:
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadFilter(f"status must be one of {', '.join(STATUSES)}")
    q = (params.get("q") or "").strip()[:100] or None
    if q is not None and not storable_text(q):
        raise BadFilter("the search text must not contain NUL characters")
    link = params.get("link") or None
    if link is not None and link not in LINK_STATUSES:
        raise BadFilter(f"link must be one of {', '.join(LINK_STATUSES)}")
    page = parse_id(params.get("page") or "1", maximum=100_000)
    if page is None:
        raise BadFilter("page must be a number from 1 to 100000")
    return SalonFilter(status=IntegrationStatus(status) if status else None, q=q, page=page,
                       attention_only=params.get("attention") == "1",
                       link=LinkStatus(link) if link else None)

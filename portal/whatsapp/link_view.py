"""What an owner is shown of a link: the view of one moment, and a poll's whole answer.

Kept apart from `service` (which makes them) so that what caches them (`poll_cache`) and
the pages showing them need not import the linking logic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.salons.status import IntegrationStatus
from portal.whatsapp import store as links
from portal.whatsapp.link import LinkStatus
from portal.whatsapp.phones import mask_phone
from portal.whatsapp.store import Link


@dataclass(frozen=True)
class LinkView:
    """What the owner's page (and the JSON API) shows of a link at one moment."""

    status: LinkStatus
    qr: str | None = None
    qr_expires_in: float | None = None
    phone_masked: str | None = None
    pairing_code: str | None = None
    pairing_expires_in: float | None = None
    connected_since: datetime | None = None  # when the current connection began
    retry_after: float | None = None  # set while the breaker refuses: the friendly retry screen
    problem: str | None = None  # an i18n key saying what went wrong, for failed starts
    passkey_code: str | None = None  # the passkey step's code to compare with the phone's
    failed_starts: int = 0  # consecutive failures: a reloaded failed screen keeps its backoff

    @property
    def version(self) -> str:
        """Changes exactly when what the owner sees changes; polls answer 'no change' else."""
        key = (f"{self.status}|{self.qr}|{self.phone_masked}|{self.pairing_code}|"
               f"{self.retry_after is not None}|{self.problem}|{self.passkey_code}")
        return hashlib.blake2s(key.encode(), digest_size=6).hexdigest()

    @property
    def waiting(self) -> bool:
        return self.status in links.WAITING

    @classmethod
    def of(cls, link: Link | None, **extra: Any) -> LinkView:
        if link is None:
            return cls(LinkStatus.IDLE, **extra)
        qr_left = (link.qr_expires_at - link.now).total_seconds() if link.qr_expires_at else None
        pairing_left = (link.pairing_expires_at - link.now).total_seconds() if link.pairing_expires_at else None
        has_pairing = link.pairing_code and pairing_left and pairing_left > 0
        if link.status is LinkStatus.FAILED and link.last_error and "problem" not in extra:
            extra["problem"] = "whatsapp.problem_gateway"  # the reason, also after a reload
        return cls(
            status=link.status,
            qr=link.qr if link.status is LinkStatus.AWAITING_SCAN else None,
            qr_expires_in=max(qr_left, 0) if qr_left is not None else None,
            phone_masked=mask_phone(link.phone),
            pairing_code=link.pairing_code if has_pairing else None,
            pairing_expires_in=pairing_left if has_pairing else None,
            connected_since=link.connected_at if link.status is LinkStatus.CONNECTED else None,
            passkey_code=link.passkey_code if link.status is LinkStatus.PASSKEY else None,
            failed_starts=link.failed_starts,
            **extra,
        )


@dataclass(frozen=True)
class Poll:
    """A poll's answer: the link as the owner should see it, and where the salon stands."""

    view: LinkView
    integration_status: IntegrationStatus
    owner_user_id: int | None = None  # the salon's owner user: only they may see this

    def shown_to(self, yclients_user_id: int | None) -> bool:
        """Whether a credential of this YClients user may see it (see `onboarding.owner.opens`)."""
        return self.owner_user_id is None or self.owner_user_id == yclients_user_id

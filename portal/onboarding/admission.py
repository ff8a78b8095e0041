"""Who may open a salon: the rule behind the landing.

YClients' signed `user_data` proves which *user* YClients sent, never which salon: the salon
ids beside it are unsigned, and YClients' salon ids are public, sequential numbers. So the
salon's own install decides:

- A salon already bound in its current install (it has an owner user and is not uninstalled)
  is opened for that owner user only, at any time — the owner returns with the same link
  from the app's Settings whenever they like. Anyone else is refused, nothing is written
  about the salon, and staff get an alert naming both users.
- A salon not yet bound in this install is bound to the landing user only while YClients
  reports its install `pending` (the owner pressed Install and we have not finished it):
  `GET /marketplace/salon/{id}/application/{app}` is the source of truth, not a clock of
  ours. `active` that we did not bind is someone else's install (staff alert); `freezed` is
  the frozen answer; anything else means "start from the YClients marketplace". YClients
  unreachable is a retry screen, never a pass.
- `LANDING_REQUIRE_PENDING=false` (for an account whose YClients does not report `pending`)
  skips the status call: the first signed user binds, and the salon is marked unconfirmed
  for staff. A salon that already works is never bound that way.

A chain's landing names several branches: each is decided the same way, and the landing is
admitted only when every branch is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from portal.onboarding import store
from portal.onboarding.landing import Landing, MarketplaceUser
from portal.platform.database import Pool
from portal.salons import event_store as events
from portal.salons import store as salon_store
from portal.salons.ids import YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon

log = logging.getLogger(__name__)

# Our statuses of a salon that works (or is on its way to): never bound without YClients' word.
_WORKING = (IntegrationStatus.ACTIVE, IntegrationStatus.ACTIVATING, IntegrationStatus.FROZEN)


class InstallStatusUnknown(Exception):
    """YClients could not be asked (down, slow, an answer we cannot read); safe to log."""


class InstallStatusSource(Protocol):
    async def install_status(self, yclients_salon_id: YclientsSalonId, application_id: int) -> str | None:
        """`data.connection_status.status` of the install, None when YClients reports none;
        raises `InstallStatusUnknown` when it cannot tell."""
        ...


@dataclass(frozen=True)
class AdmissionRules:
    application_id: int
    require_pending: bool


@dataclass(frozen=True)
class Refusal:
    """Why a landing may not open its salon: an HTTP status, a stable code, sentences."""

    status: int
    code: str
    message_key: str
    next_step_key: str | None = "error.next_step_marketplace"
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Admitted:
    """The salons the landing opens (a chain: one per branch), first branch first."""

    salons: tuple[Salon, ...]
    # Per branch, for the timeline: new / returning, and what YClients said.
    notes: tuple[dict[str, object], ...] = field(default=())
    # The salon whose onboarding (WhatsApp link) serves the install: the first branch of a
    # chain's landing, or the lead of the install a returning branch belongs to.
    lead: Salon | None = None


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


OTHER_USER = Refusal(403, "SALON_OTHER_USER", "error.salon_other_user", "error.next_step_ask_owner")
INSTALLED_ELSEWHERE = Refusal(409, "INSTALLED_ELSEWHERE", "error.installed_elsewhere", "error.next_step_support")
NEEDS_SUPPORT = Refusal(409, "SALON_NEEDS_SUPPORT", "error.salon_needs_support", "error.next_step_support")
FROZEN = Refusal(409, "INSTALL_FROZEN", "error.install_frozen", "error.next_step_pay")
NOT_INSTALLED = Refusal(409, "NOT_INSTALLED", "error.not_installed", "error.next_step_marketplace")
YCLIENTS_UNAVAILABLE = Refusal(503, "YCLIENTS_UNAVAILABLE", "error.yclients_unavailable",
                               "error.next_step_retry", retry_after_s=30)


async def _decide_unbound(pool: Pool, partner: InstallStatusSource, rules: AdmissionRules,
                          yclients_salon_id: YclientsSalonId, known: store.Ownership | None,
                          user: MarketplaceUser) -> tuple[bool, str | None]:
    """For a salon not bound in this install: may `user` bind it? (confirmed, YClients'
    status), or `Refused`."""
    salon = known.salon if known else None
    if not rules.require_pending:
        if salon is not None and salon.integration_status in _WORKING:
            await events.record_quietly(pool, salon.pk, "landing_refused_unbound",  # an alert for staff
                                        {"user_id": user.id, "yclients_salon_id": yclients_salon_id})
            raise Refused(NEEDS_SUPPORT)
        return False, None
    try:
        status = await partner.install_status(yclients_salon_id, rules.application_id)
    except InstallStatusUnknown as exc:
        log.warning("landing: install status unknown", extra={"yclients_salon_id": yclients_salon_id,
                                                              "error": str(exc)})
        raise Refused(YCLIENTS_UNAVAILABLE) from None
    if status == "pending":
        return True, status
    if status == "active":
        # Ours would be bound; an active install we never bound is someone else's, or a salon
        # from before owners were recorded: a human decides (staff can hand it over).
        await events.record_quietly(pool, salon.pk if salon else None, "installed_elsewhere",  # an alert
                                    {"user_id": user.id, "yclients_salon_id": yclients_salon_id,
                                     "ours": salon is not None})
        raise Refused(NEEDS_SUPPORT if salon is not None and salon.integration_status in _WORKING
                      else INSTALLED_ELSEWHERE)
    if status == "freezed":
        raise Refused(FROZEN)
    raise Refused(NOT_INSTALLED)


async def _admit_branch(pool: Pool, partner: InstallStatusSource, rules: AdmissionRules,
                        yclients_salon_id: YclientsSalonId, user: MarketplaceUser) -> tuple[Salon, dict[str, object]]:
    for _ in range(2):  # a lost race for the binding is decided again, against the winner
        async with pool.acquire() as conn:
            known = await store.ownership(conn, yclients_salon_id)
        if known is not None and known.bound:
            if known.owner_user_id != user.id:
                await events.record_quietly(pool, known.salon.pk, "landing_refused_other_user",  # an alert
                                            {"owner_user_id": known.owner_user_id, "user_id": user.id})
                raise Refused(OTHER_USER)
            async with pool.acquire() as conn:
                salon = await store.admit_returning(conn, known.salon.pk, user)
            return salon, {"returning": True}
        confirmed, status = await _decide_unbound(pool, partner, rules, yclients_salon_id, known, user)
        async with pool.acquire() as conn:
            bound = await store.bind_owner(conn, yclients_salon_id, user, confirmed=confirmed)
        if bound is not None:
            return bound.salon, {"new": bound.is_new, "bound": True, "install_status": status,
                                 "confirmed": confirmed}
    raise Refused(OTHER_USER)  # pragma: no cover (needs a third user racing in between)


async def admit(pool: Pool, partner: InstallStatusSource, rules: AdmissionRules, landing: Landing) -> Admitted:
    """Open the landing's salons for its user, or raise `Refused`."""
    if landing.user is None:  # an unsigned landing an operator allowed: nobody to bind
        async with pool.acquire() as conn:
            recorded = [await store.record_unsigned(conn, sid) for sid in landing.yclients_salon_ids]
        return Admitted(tuple(r.salon for r in recorded), tuple({"new": r.is_new, "signed": False} for r in recorded),
                        recorded[0].salon)
    admitted = [await _admit_branch(pool, partner, rules, sid, landing.user) for sid in landing.yclients_salon_ids]
    salons = tuple(s for s, _ in admitted)
    async with pool.acquire() as conn:
        if len(salons) > 1:  # a chain: one install, the first branch leads it
            await store.group_install(conn, salons[0].pk, [s.pk for s in salons[1:]])
            lead = await salon_store.by_pk(conn, salons[0].pk)
        elif salons[0].install_lead_id is not None:  # a branch of a chain comes back alone
            lead = await salon_store.by_pk(conn, salons[0].install_lead_id)
        else:
            lead = salons[0]
    return Admitted(salons, tuple(n for _, n in admitted), lead or salons[0])

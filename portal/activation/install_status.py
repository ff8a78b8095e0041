"""YClients' install status, read before every activation callback: the platform's truth.

The platform's state machine (Altegio's integration reference,
`altegio/altegio-integrations-hub-mcp` `docs/marketplace-internals.md`):
`uninstalled --owner grant--> pending --partner callback--> active`, `active --> freezed` on
expiry, `freezed --> active` on payment, any `--> uninstalled`. A pending install waits for
the callback as long as YClients keeps it (the public guide says an hour, the platform's
code twelve): no clock of ours decides. A callback after `active` is refused by the
platform, so `active` never gets a second one.
"""

from __future__ import annotations

import logging

from portal.activation.deps import PartnerDeps
from portal.activation.outcomes import FROZEN, NOT_INSTALLED, PARTNER_MESSAGES, Outcome, status_unavailable
from portal.activation.partner import PartnerError
from portal.salons.ids import YclientsSalonId

log = logging.getLogger(__name__)


async def platform_status(runtime: PartnerDeps, yclients_salon_id: YclientsSalonId) -> str | Outcome:
    """YClients' install status when it allows going on (`pending` or `active`), else the
    answer for the owner. Unreadable is "try again": never a callback on a guess."""
    try:
        status = await runtime.partner.install_status(yclients_salon_id, runtime.settings.app_id)
    except PartnerError as exc:
        log.warning("install status unreadable before activation", extra={
            "yclients_salon_id": yclients_salon_id, "error": exc.safe_summary})
        return status_unavailable(PARTNER_MESSAGES.get(exc.kind, "activation.partner_unreachable"))
    if status is None:
        return NOT_INSTALLED
    if status == "freezed":
        return FROZEN
    if status not in ("pending", "active"):
        log.warning("install status YClients does not document", extra={
            "yclients_salon_id": yclients_salon_id, "install_status": status[:32]})
        return status_unavailable("activation.partner_failed")
    return status

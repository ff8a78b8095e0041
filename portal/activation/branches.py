"""An install's branches, activated together.

A chain installs the app for several branches at once, and YClients activates the install
only when the partner finishes it for *every* branch it named. The owner linked one WhatsApp
number for the install (the lead's link); this activates each branch in turn with the usual
one-salon activation — its own advisory lock, intent record and recovery — so a branch done
once is never sent again (an active branch answers without a partner call), and a branch
that failed is simply tried again by the next press or the panel's own retry. A single salon
is the one-branch case of the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.activation import activate as activation
from portal.activation.deps import ActivationDeps
from portal.activation.outcomes import Outcome
from portal.salons import store as salons
from portal.salons.ids import YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon

# Seconds before the owner's page tries the branches still missing by itself.
PARTIAL_RETRY_S = 5


@dataclass(frozen=True)
class BranchResult:
    yclients_salon_id: YclientsSalonId
    outcome: Outcome


@dataclass(frozen=True)
class InstallOutcome:
    """The install's answer (the lead's, or "some branches are missing"), and each branch's."""

    outcome: Outcome
    branches: tuple[BranchResult, ...]

    @property
    def done(self) -> int:
        return sum(1 for b in self.branches if b.outcome.ok)

    @property
    def total(self) -> int:
        return len(self.branches)


async def _install_of(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId,
                      salon: Salon | None) -> list[YclientsSalonId]:
    if salon is None:
        return [yclients_salon_id]  # the activation says "no such salon" itself
    async with runtime.pool.acquire() as conn:
        members = await salons.branches(conn, salon.install_lead_id or salon.pk)
    working = [m.yclients_salon_id for m in members if m.integration_status != IntegrationStatus.UNINSTALLED]
    return working or [yclients_salon_id]


async def activate_install(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId,
                           salon: Salon | None) -> InstallOutcome:
    """Activate every branch of the install `yclients_salon_id` belongs to, lead first.
    `salon` is that salon as the handler read it (None: there is none), not read again here."""
    members = await _install_of(runtime, yclients_salon_id, salon)
    lead = await activation.activate(runtime, members[0])
    results = [BranchResult(members[0], lead)]
    if len(members) == 1 or not lead.ok:
        # A single salon; or the lead itself is refused (WhatsApp, busy, …): the branches,
        # which share its link and its owner, would be too.
        return InstallOutcome(lead, tuple(results))
    for branch in members[1:]:
        results.append(BranchResult(branch, await activation.activate(runtime, branch)))
    if any(not r.outcome.ok for r in results):
        partial = Outcome(502, "PARTIAL_ACTIVATION", "activation.partial", retry_after=PARTIAL_RETRY_S)
        return InstallOutcome(partial, tuple(results))
    # Every branch is connected: the owner goes where YClients sent the lead's browser.
    redirect = next((r.outcome.redirect_url for r in results if r.outcome.redirect_url), None)
    done = Outcome(200, "ACTIVATED", redirect_url=redirect,
                   already_active=all(r.outcome.already_active for r in results))
    return InstallOutcome(done, tuple(results))

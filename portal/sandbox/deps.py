"""What the sandbox's pages read of the running portal, as a Protocol the composition root's
container fits structurally (see `platform.deps`): the fake marketplace, the gateway (the
simulator, when it is the one) and the settings.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.platform.deps import MissingDeps, container
from portal.platform.settings import Settings
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.whatsapp.link import WhatsAppGateway


@runtime_checkable
class SandboxDeps(Protocol):
    settings: Settings
    gateway: WhatsAppGateway
    market: SandboxMarketplace | None  # None outside demo mode


def sandbox_deps(request: Request) -> SandboxDeps:
    return cast(SandboxDeps, container(request))  # it fits: see `platform.deps`


def market_of(request: Request) -> SandboxMarketplace:
    """The fake marketplace; its pages are routed in demo mode only, where there is one."""
    market = sandbox_deps(request).market
    if market is None:
        raise MissingDeps(SandboxMarketplace, market)
    return market

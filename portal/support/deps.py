"""What support reads of the running portal and of the request, typed.

The staff's actions need the gateway (with its timeout), the pool and the shared breaker
(`ActionDeps`); the dashboard's pages also probe YClients, count sign-in failures and show
the pool (`SupportDeps`). Both are Protocols the composition root's container fits
structurally (see `platform.deps`). The signed-in staff member's name rides on the request
from the guard to the page; it is set and read here only.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.activation.partner import PartnerClient
from portal.platform.deps import MissingDeps, container
from portal.platform.metrics import PoolSample
from portal.web.rate_limits import RateLimits
from portal.whatsapp.deps import GatewayDeps
from portal.whatsapp.shared_breaker import SharedBreaker


class ActionDeps(GatewayDeps, Protocol):
    breaker: SharedBreaker


@runtime_checkable
class SupportDeps(ActionDeps, Protocol):
    partner: PartnerClient
    rate_limits: RateLimits
    def pool_sample(self) -> PoolSample: ...


def support_deps(request: Request) -> SupportDeps:
    return cast(SupportDeps, container(request))  # it fits: see `platform.deps`


def remember_staff(request: Request, user: str) -> None:
    """The guard (`dashboard.staff_only`) has checked the staff cookie: pages say who acts."""
    request.state.staff = user


def signed_in_staff(request: Request) -> str:
    user = getattr(request.state, "staff", None)
    if isinstance(user, str):
        return user
    raise MissingDeps(str, user)  # a page served without the guard: a programming error

"""What YClients' webhooks read of the running portal, as a Protocol the composition root's
container fits structurally (see `platform.deps`). The worker needs only a gateway with its
timeout and the pool (`whatsapp.deps.GatewayDeps`); the endpoint counts deliveries too.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.platform.deps import container
from portal.platform.metrics import PortalMetrics
from portal.whatsapp.deps import GatewayDeps


@runtime_checkable
class WebhookDeps(GatewayDeps, Protocol):
    metrics: PortalMetrics


def webhook_deps(request: Request) -> WebhookDeps:
    return cast(WebhookDeps, container(request))  # it fits: see `platform.deps`

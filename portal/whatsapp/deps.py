"""What the WhatsApp package reads of the running portal, as Protocols the composition root's
container fits structurally (see `platform.deps`): the package never names that container.

`GatewayDeps` is enough for a gateway call with its timeout and the rows beside it (phone
confirmation, the staff's actions); `WhatsAppDeps` is what linking, its handlers, the
gateway's events and the safety sweep use.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.platform.database import Pool
from portal.platform.deps import container
from portal.platform.metrics import PortalMetrics
from portal.platform.settings import Settings
from portal.whatsapp.link import WhatsAppGateway
from portal.whatsapp.poll_cache import LinkVersions, QrRenewals
from portal.whatsapp.qr_image import QrImages
from portal.whatsapp.shared_breaker import SharedBreaker


class GatewayDeps(Protocol):
    settings: Settings
    pool: Pool
    gateway: WhatsAppGateway


@runtime_checkable
class WhatsAppDeps(GatewayDeps, Protocol):
    breaker: SharedBreaker  # one for the deployment, shared through PostgreSQL
    metrics: PortalMetrics
    link_versions: LinkVersions
    qr_images: QrImages
    qr_renewals: QrRenewals


def whatsapp_deps(request: Request) -> WhatsAppDeps:
    return cast(WhatsAppDeps, container(request))  # it fits: see `platform.deps`

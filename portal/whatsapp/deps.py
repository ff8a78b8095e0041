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
from portal.whatsapp.link_versions import LinkVersions, QrRenewals
from portal.whatsapp.qr_image import QrImages
from portal.whatsapp.shared_breaker import SharedBreaker


class GatewayDeps(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def pool(self) -> Pool: ...
    @property
    def gateway(self) -> WhatsAppGateway: ...


@runtime_checkable
class WhatsAppDeps(GatewayDeps, Protocol):
    @property
    def breaker(self) -> SharedBreaker: ...  # one for the deployment, shared through PostgreSQL
    @property
    def metrics(self) -> PortalMetrics: ...
    @property
    def link_versions(self) -> LinkVersions: ...
    @property
    def qr_images(self) -> QrImages: ...
    @property
    def qr_renewals(self) -> QrRenewals: ...


def whatsapp_deps(request: Request) -> WhatsAppDeps:
    return cast(WhatsAppDeps, container(request))  # it fits: see `platform.deps`

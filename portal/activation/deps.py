"""What activation reads of the running portal, as Protocols the composition root's
container fits structurally (see `platform.deps`): the package never names that container.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.activation.partner import PartnerClient
from portal.platform.database import Pool
from portal.platform.deps import container
from portal.platform.metrics import PortalMetrics
from portal.platform.settings import Settings


class PartnerDeps(Protocol):
    """Enough to ask YClients about an install."""

    settings: Settings
    partner: PartnerClient


@runtime_checkable
class ActivationDeps(PartnerDeps, Protocol):
    pool: Pool
    metrics: PortalMetrics
    # Bounds activations per instance: each holds a pool connection for the partner call.
    activation_slots: asyncio.Semaphore


def activation_deps(request: Request) -> ActivationDeps:
    return cast(ActivationDeps, container(request))  # it fits: see `platform.deps`

"""What the web layer reads of the running portal: templates, rate limits, a few settings.

Rendering, throttling and the language switch sit below every subsystem and the composition
root, so they name only this Protocol; the root's container fits it (see `platform.deps`).
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from portal.platform.deps import container, container_if_any
from portal.platform.metrics import PortalMetrics
from portal.platform.settings import Settings
from portal.web.rate_limits import RateLimits


@runtime_checkable
class WebDeps(Protocol):
    settings: Settings
    templates: Jinja2Templates
    rate_limits: RateLimits
    metrics: PortalMetrics


def web_deps_if_any(request: Request) -> WebDeps | None:
    """None outside the app's lifespan (a page rendered without one falls back to defaults)."""
    deps = container_if_any(request)
    return cast(WebDeps, deps) if deps is not None else None


def web_deps(request: Request) -> WebDeps:
    return cast(WebDeps, container(request))  # it fits: see `platform.deps`

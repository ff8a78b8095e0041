"""Each package's typed accessor: the running portal's container fits every package's
Protocol, and a request without it is refused loudly rather than read as anything."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from portal.activation.deps import ActivationDeps, activation_deps
from portal.onboarding.deps import OnboardingDeps, onboarding_deps
from portal.platform.deps import MissingDeps
from portal.platform.routes import HealthDeps, health_deps
from portal.sandbox.deps import SandboxDeps, sandbox_deps
from portal.support.deps import SupportDeps, signed_in_staff, support_deps
from portal.web.deps import WebDeps, web_deps, web_deps_if_any
from portal.whatsapp.deps import WhatsAppDeps, whatsapp_deps
from portal.yclients_webhooks.deps import WebhookDeps, webhook_deps

ACCESSORS = [health_deps, web_deps, onboarding_deps, whatsapp_deps, activation_deps, webhook_deps,
             support_deps, sandbox_deps]


def _request(state: dict[str, object]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": state})


def test_the_running_container_fits_every_package(client):
    """What the accessors take on trust per request (`platform.deps`), checked member by member."""
    runtime = client.app_state["runtime"]
    for protocol in (HealthDeps, WebDeps, OnboardingDeps, WhatsAppDeps, ActivationDeps, WebhookDeps,
                     SupportDeps, SandboxDeps):
        assert isinstance(runtime, protocol), protocol.__name__
    request = _request({"runtime": runtime})
    assert all(accessor(request) is runtime for accessor in ACCESSORS)


@pytest.mark.parametrize("accessor", ACCESSORS)
def test_a_request_outside_the_lifespan_is_refused(accessor):
    with pytest.raises(MissingDeps):
        accessor(_request({}))


def test_something_else_in_the_state_is_refused_too():
    with pytest.raises(MissingDeps, match="Container"):
        whatsapp_deps(_request({"runtime": object()}))


def test_rendering_without_a_lifespan_falls_back():
    assert web_deps_if_any(_request({})) is None


def test_pages_without_the_staff_guard_have_no_staff():
    with pytest.raises(MissingDeps):
        signed_in_staff(_request({}))
    assert signed_in_staff(_request({"staff": "alice"})) == "alice"

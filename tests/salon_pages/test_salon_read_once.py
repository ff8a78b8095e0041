"""A page resolves its salon once: the owner's lookup reads it, and the page's poll takes that
`Salon` and reads the link alone. The store's reads by YClients id (the owner's polls' one
round trip, through the view that joins `salons`) are made to fail here, and the onboarding
page and the salon page still answer on a cache miss, with the gateway's events on and off."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.platform.settings import Settings
from portal.whatsapp import store
from tests.helpers.landing import land
from tests.helpers.partner import install_calls
from tests.salon_pages.test_salon_page import EN, HX, SALON, connect


@pytest.fixture
def portal(make_settings, partner_env):
    settings = make_settings(**partner_env, WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="0.1")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client, settings


def _salon_read_again(*args: object, **kwargs: object) -> None:
    raise AssertionError("the page's poll read the salon again, by its YClients id")


def _no_second_salon_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "read_for_owner", _salon_read_again)
    monkeypatch.setattr(store, "read_for_poll", _salon_read_again)


def _on_a_miss(client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, *, events: bool) -> str:
    """The page as rendered with nothing of the salon in this instance's poll memory."""
    monkeypatch.setattr(Settings, "gateway_events", property(lambda _: events))
    versions = client.app_state["runtime"].link_versions
    versions.forget_all()
    misses = versions.misses
    r = client.get(path, headers=EN, follow_redirects=False)
    assert r.status_code == 200, (path, r.status_code)
    assert versions.misses == misses + 1  # the poll was not answered from memory: it read the link
    return r.text


@pytest.mark.parametrize("events", [False, True], ids=["events-off", "events-on"])
def test_the_pages_poll_reads_no_salon_again_on_a_cache_miss(portal, partner, monkeypatch, events):
    client, settings = portal
    partner[1].grant(SALON)
    land(client, settings.partner_token, salon_id=SALON)
    _no_second_salon_read(monkeypatch)
    page = _on_a_miss(client, monkeypatch, "/onboarding", events=events)
    assert 'data-testid="salon-heading"' in page and 'data-state="idle"' in page

    monkeypatch.undo()  # the owner links the number (its polls read by the token's YClients id)
    connect(client, "79000000001")
    _no_second_salon_read(monkeypatch)
    page = _on_a_miss(client, monkeypatch, "/onboarding", events=events)
    assert 'data-state="connected"' in page and "is linked." in page
    client.app_state["runtime"].link_versions.forget_all()
    with pytest.raises(AssertionError, match="read the salon again"):  # the owner's poll still reads by id
        client.get("/onboarding/whatsapp/status", headers=HX)

    monkeypatch.undo()
    r = client.post("/marketplace/activate", follow_redirects=False)
    assert r.status_code == 303 and install_calls(partner[1]) == 1
    _no_second_salon_read(monkeypatch)
    page = _on_a_miss(client, monkeypatch, "/salon", events=events)
    assert 'data-testid="integration-active"' in page and 'data-state="connected"' in page
    assert "+7 ••• •••-••-01" in page

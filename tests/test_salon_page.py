"""The salon's own page and the self-service relink: real PostgreSQL, the WhatsApp simulator,
and a fake YClients partner server over HTTP (it counts the activation calls)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.whatsapp import LinkState, LinkStatus
from portal.whatsapp.linking import _as_seen
from tests.support.landing import land
from tests.support.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server

HX = {"HX-Request": "true"}
EN = {"Accept-Language": "en"}
SALON = 500001  # a sandbox demo salon: the sandbox's simulator controls know it


@pytest.fixture
def partner():
    with partner_server() as (url, market):
        yield url, market


@pytest.fixture
def portal(make_settings, partner):
    url, _ = partner
    # A connected link is looked at every 0.1 s while its page polls (WHATSAPP_SAFETY_POLL_S).
    settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=url,
                             YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="0.1")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield client, settings


def until(condition: Callable[[], object], timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def simulator(client):
    return client.app_state["runtime"].gateway


def poll_until(client, state: str) -> str:
    """The owner's page polling its widget (htmx) until the link shows `state`."""
    def seen():
        r = client.get("/onboarding/whatsapp/status", headers={**HX, **EN})
        return r.text if f'data-state="{state}"' in r.text else None
    return until(seen)


def connect(client, phone: str) -> str:
    r = client.post("/onboarding/whatsapp/start", headers=HX)
    assert 'data-state="awaiting_scan"' in r.text, r.text
    simulator(client).scan(f"salon-{SALON}", phone)
    return poll_until(client, "connected")


def active_salon(client, settings, market, phone="79000000001") -> None:
    market.grant(SALON)  # the owner pressed Install in the marketplace
    land(client, settings.partner_token, salon_id=SALON)
    connect(client, phone)
    r = client.post("/marketplace/activate", follow_redirects=False)
    assert r.status_code == 303 and install_calls(market) == 1


def events(db, event_type: str) -> list[dict]:
    rows = db.fetch("SELECT payload FROM marketplace_events WHERE event_type = $1 ORDER BY id", event_type)
    return [json.loads(r["payload"]) for r in rows]


def test_a_returning_owner_of_an_active_salon_lands_on_the_status_page(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    client.cookies.clear()
    landed = land(client, settings.partner_token, salon_id=SALON)  # the signed landing again
    assert landed.status_code == 303 and landed.headers["location"] == "/onboarding"
    onboarding = client.get("/onboarding", follow_redirects=False)
    assert onboarding.status_code == 303 and onboarding.headers["location"] == "/salon"
    page = client.get("/salon", headers=EN).text
    assert 'data-testid="integration-active"' in page and 'data-testid="assistant-working"' in page
    assert "+7 ••• •••-••-01" in page and "79000000001" not in page
    assert 'data-testid="connected-since"' in page and "Connected since" in page
    assert 'href="/salon/relink"' in page and 'href="/salon/disconnect"' in page
    assert "Now: link" not in page and 'data-testid="step-note-0"' not in page
    # The connected widget keeps watching the link here (the onboarding's connected one does not).
    assert 'hx-get="/onboarding/whatsapp/status?v=' in page
    assert "Сейчас" not in client.get("/salon").text  # Russian by default, no onboarding steps either


def test_the_step_texts_follow_the_state(portal, db):
    client, settings = portal
    land(client, settings.partner_token, salon_id=SALON)
    page = client.get("/onboarding", headers=EN).text
    assert "Now: link the salon" in page and "Then: we switch" in page
    swap = connect(client, "79000000001")
    # The swap that shows "connected" carries the steps' new sentences out of band.
    assert 'id="step-note-0" data-testid="step-note-0" hx-swap-oob="true">Done:' in swap
    assert 'id="step-note-1" data-testid="step-note-1" hx-swap-oob="true">Now: switch' in swap
    page = client.get("/onboarding", headers=EN).text
    assert "Now: link the salon" not in page and "is linked." in page


def test_the_phone_logs_out_the_page_says_so_and_a_new_number_relinks(portal, partner, db):
    client, settings = portal
    market = partner[1]
    active_salon(client, settings, market)
    key_hash = db.fetchval("SELECT api_key_hash FROM salons")
    page = client.get("/salon", headers=EN).text
    assert 'data-state="connected"' in page
    # The sandbox plays the phone unlinking the device; the gateway sends nothing.
    r = client.post(f"/sandbox/whatsapp/{SALON}/logout", follow_redirects=False)
    assert r.headers["location"].startswith("/sandbox/?result=done")
    lost = poll_until(client, "logged_out")  # the safety poll read the gateway
    assert 'data-testid="whatsapp-lost"' in lost and "WhatsApp disconnected" in lost
    assert 'id="link-phone-slot" hx-swap-oob="true"' in lost and 'data-testid="phone-input"' in lost
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"
    assert events(db, "whatsapp_lost") == [{"phone": "+7 ••• •••-••-01", "status": "logged_out"}]

    # The owner takes a new QR in place and links another number.
    relinked = connect(client, "79000000077")
    assert 'data-testid="assistant-working"' in relinked and "+7 ••• •••-••-77" in relinked
    assert events(db, "whatsapp_relinked") == [
        {"phone": "+7 ••• •••-••-77", "previous_phone": "+7 ••• •••-••-01", "same_number": False}]
    salon = db.fetchrow("SELECT integration_status, api_key_hash, install_generation FROM salons")
    assert (salon["integration_status"], salon["api_key_hash"], salon["install_generation"]) == (
        "active", key_hash, 1)
    assert install_calls(market) == 1  # no second activation, no new key
    trail = [r["event_type"] for r in db.fetch("SELECT event_type FROM marketplace_events ORDER BY id")]
    assert trail.index("whatsapp_lost") < trail.index("whatsapp_relinked")


def test_the_owners_disconnect_asks_first_then_logs_out_and_is_recorded(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    confirm = client.get("/salon/disconnect", headers=EN)
    assert confirm.status_code == 200 and 'action="/salon/disconnect"' in confirm.text
    assert "Disconnect WhatsApp?" in confirm.text and db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    fragment = client.get("/salon/disconnect", headers={**HX, **EN})
    assert fragment.text.lstrip().startswith('<div class="confirm"')  # in place, no page around it
    done = client.post("/salon/disconnect", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/salon"
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"
    state = client.portal.call(simulator(client).get_state, f"salon-{SALON}")
    assert state.status is LinkStatus.LOGGED_OUT  # logged out at the gateway too
    assert events(db, "whatsapp_disconnected") == [
        {"by": "owner", "relink": False, "phone": "+7 ••• •••-••-01", "gateway_error": None}]
    assert events(db, "whatsapp_lost")[0]["cause"] == "owner_disconnect"
    page = client.get("/salon", headers=EN).text
    assert "WhatsApp disconnected" in page and 'data-testid="try-again"' in page and 'data-testid="phone-input"' in page
    assert db.fetchval("SELECT integration_status FROM salons") == "active"


def test_the_owners_relink_shows_a_new_qr_in_place(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    assert 'action="/salon/relink"' in client.get("/salon/relink").text
    r = client.post("/salon/relink", headers=HX)
    assert r.status_code == 200 and 'data-state="awaiting_scan"' in r.text and "<svg" in r.text
    assert 'id="salon-summary"' in r.text and 'hx-swap-oob="true"' in r.text
    assert events(db, "whatsapp_disconnected")[0]["relink"] is True
    assert events(db, "whatsapp_lost")[0]["cause"] == "owner_relink"
    simulator(client).scan(f"salon-{SALON}", "79000000001")
    poll_until(client, "connected")
    assert events(db, "whatsapp_relinked")[0]["same_number"] is True
    assert install_calls(partner[1]) == 1


def test_the_salon_page_and_its_actions_are_for_active_salons_only(portal, db):
    client, settings = portal
    assert client.get("/salon", follow_redirects=False).headers["location"] == "/onboarding"  # no credential
    land(client, settings.partner_token, salon_id=SALON)
    connect(client, "79000000001")
    before = db.fetchval("SELECT count(*) FROM marketplace_events")
    for path in ("/salon", "/salon/disconnect", "/salon/relink"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/onboarding"
    for path in ("/salon/disconnect", "/salon/relink"):
        r = client.post(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/onboarding"
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    assert db.fetchval("SELECT count(*) FROM marketplace_events") == before  # nothing written


def test_a_cross_site_form_cannot_disconnect(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    r = client.post("/salon/disconnect", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and db.fetchval("SELECT status FROM whatsapp_links") == "connected"


@pytest.mark.parametrize(("reported", "stored"), [
    (LinkStatus.IDLE, LinkStatus.LOGGED_OUT),  # WAHA: STOPPED
    (LinkStatus.EXPIRED, LinkStatus.LOGGED_OUT),  # WAHA: FAILED without an account
    (LinkStatus.AWAITING_SCAN, LinkStatus.LOGGED_OUT),  # WAHA: back to scanning
    (LinkStatus.FAILED, LinkStatus.FAILED),
    (LinkStatus.LINKING, LinkStatus.LINKING),
])
def test_a_connected_session_the_gateway_no_longer_holds_is_logged_out(reported, stored):
    # WAHA has no logged-out status; the portal knows the number was connected.
    assert _as_seen(LinkStatus.CONNECTED, LinkState(reported)).status is stored
    assert _as_seen(LinkStatus.AWAITING_SCAN, LinkState(reported)).status is reported


def test_erasing_personal_data_forgets_the_last_connected_number_too(portal, partner, db, database_url):
    import asyncpg

    from portal.salons import personal_data_store
    from tests.support.database import run

    client, settings = portal
    active_salon(client, settings, partner[1])
    pk = db.fetchval("SELECT id FROM salons")
    assert db.fetchval("SELECT connected_phone FROM whatsapp_links") == "79000000001"

    async def erase() -> bool:
        conn = await asyncpg.connect(database_url)
        try:
            await personal_data_store.erase(conn, pk)
            return await personal_data_store.holds_personal_data(conn, pk)
        finally:
            await conn.close()

    assert run(erase()) is False
    assert db.fetchval("SELECT connected_phone FROM whatsapp_links") is None

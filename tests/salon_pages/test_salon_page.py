"""The salon's own page and the self-service relink: real PostgreSQL, the WhatsApp simulator,
and a fake YClients partner server over HTTP (it counts the activation calls)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.whatsapp.link import LinkState, LinkStatus
from portal.whatsapp.service import _as_seen
from tests.helpers.landing import land
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server

HX = {"HX-Request": "true"}
EN = {"Accept-Language": "en"}
SALON = 500001  # a sandbox demo salon: the sandbox's simulator controls know it


@pytest.fixture
def portal(make_settings, partner_env):
    # A connected link is looked at every 0.1 s while its page polls (WHATSAPP_SAFETY_POLL_S).
    settings = make_settings(**partner_env, WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="0.1")
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


def code_from_phone(client) -> str:
    """The code as the salon's phone received it (the simulator keeps what sessions send)."""
    sent = simulator(client).sent_texts(f"salon-{SALON}")
    assert sent, "no message reached the phone"
    found = re.search(r"\b\d{6}\b", sent[0].text)
    assert found, sent[0].text
    return found.group(0)


def send_code(client, action: str = "relink") -> str:
    r = client.post("/salon/code", data={"purpose": action}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/salon/{action}", r.text
    return code_from_phone(client)


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
    assert confirm.status_code == 200 and 'action="/salon/code"' in confirm.text and 'name="purpose" value="disconnect"' in confirm.text
    assert "Disconnect WhatsApp?" in confirm.text and db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    fragment = client.get("/salon/disconnect", headers={**HX, **EN})
    assert fragment.text.lstrip().startswith('<div class="confirm"')  # in place, no page around it
    code = send_code(client, "disconnect")
    done = client.post("/salon/disconnect", data={"code": code}, follow_redirects=False)
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
    assert 'action="/salon/code"' in client.get("/salon/relink").text
    r = client.post("/salon/relink", data={"code": send_code(client)}, headers=HX)
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

    from portal.support import personal_data as personal_data_store
    from tests.helpers.database import run

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


# --- changing a working link needs the working phone -------------------------------------


def link_untouched(client, db) -> None:
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
    state = client.portal.call(simulator(client).get_state, f"salon-{SALON}")
    assert state.status is LinkStatus.CONNECTED  # no logout reached the gateway
    assert events(db, "whatsapp_disconnected") == [] and events(db, "whatsapp_lost") == []


@pytest.mark.parametrize("action", ["relink", "disconnect"])
def test_changing_a_connected_link_without_the_code_changes_nothing(portal, partner, db, action):
    client, settings = portal
    active_salon(client, settings, partner[1])
    step = client.get(f"/salon/{action}", headers=EN).text
    assert 'data-testid="code-needed"' in step and "+7 ••• •••-••-01" in step
    assert simulator(client).sent_texts(f"salon-{SALON}") == []  # showing the step sends nothing
    for data, sentence in (({}, "Type the code we sent"), ({"code": "123456"}, "no longer works")):  # none sent
        r = client.post(f"/salon/{action}", data=data, headers=EN, follow_redirects=False)
        assert r.status_code == 422 and sentence in r.text, r.text
        link_untouched(client, db)
    code = send_code(client, action)
    wrong = "1" * 6 if code != "1" * 6 else "2" * 6
    for data in ({"code": wrong}, {"code": "x" * 5000}, {"code": code + "1"}):
        r = client.post(f"/salon/{action}", data=data, headers=EN, follow_redirects=False)
        assert r.status_code == 422 and "This code is not right" in r.text and "Nothing was changed" in r.text
        link_untouched(client, db)
    r = client.post(f"/salon/{action}", data={"code": wrong}, follow_redirects=False)  # in Russian
    assert r.status_code == 422 and "Код неверный" in r.text
    link_untouched(client, db)


def test_the_code_goes_through_the_salons_own_whatsapp_and_opens_the_relink(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    code = send_code(client)
    [message] = simulator(client).sent_texts(f"salon-{SALON}")
    assert message.to == "79000000001" and code in message.text  # the salon's own number
    assert events(db, "phone_confirmation_sent") == [{"to": "+7 ••• •••-••-01"}]
    inbox = client.get("/sandbox/").text  # the sandbox's phone shows what it received
    assert f'data-testid="phone-message-{SALON}">{code} ' in inbox
    step = client.get("/salon/relink", headers=EN).text
    assert "We sent a code to WhatsApp +7 ••• •••-••-01" in step and 'data-testid="code-input"' in step
    assert code not in step and code not in str(db.fetch("SELECT * FROM phone_confirmations"))  # a hash only
    r = client.post("/salon/relink", data={"code": f" {code[:3]} {code[3:]} "}, headers={**HX, **EN})
    assert r.status_code == 200 and 'data-state="awaiting_scan"' in r.text and "<svg" in r.text
    assert events(db, "whatsapp_disconnected")[0]["relink"] is True
    assert db.count("phone_confirmations") == 0  # used up


def test_a_wrong_code_over_htmx_goes_back_into_the_step(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    code = send_code(client, "disconnect")
    wrong = "1" * 6 if code != "1" * 6 else "2" * 6
    r = client.post("/salon/disconnect", data={"code": wrong}, headers={**HX, **EN})
    assert r.status_code == 422 and r.headers["hx-retarget"] == "#salon-confirm"
    assert r.text.lstrip().startswith('<div class="confirm"') and "This code is not right" in r.text
    link_untouched(client, db)
    assert client.post("/salon/disconnect", data={"code": code}, follow_redirects=False).status_code == 303
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"


def test_a_code_expires_and_wears_out_after_five_wrong_tries(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    code = send_code(client)
    db.execute("UPDATE phone_confirmations SET expires_at = now() - interval '1 second'")
    r = client.post("/salon/relink", data={"code": code}, headers=EN, follow_redirects=False)
    assert r.status_code == 422 and "no longer works" in r.text
    link_untouched(client, db)

    db.execute("UPDATE phone_confirmations SET sent_at = now() - interval '61 seconds'")  # past the pause
    simulator(client)._sent.clear()
    code = send_code(client)
    wrong = "1" * 6 if code != "1" * 6 else "2" * 6
    for _ in range(5):
        assert client.post("/salon/relink", data={"code": wrong}, follow_redirects=False).status_code == 422
    r = client.post("/salon/relink", data={"code": code}, headers=EN, follow_redirects=False)
    assert r.status_code == 422 and "no longer works" in r.text  # even the right one, now
    link_untouched(client, db)


def test_a_new_code_waits_a_minute_and_replaces_the_old_one(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    first = send_code(client)
    again = client.post("/salon/code", data={"purpose": "relink"}, headers=EN, follow_redirects=False)
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1 and "a moment ago" in again.text
    assert len(simulator(client).sent_texts(f"salon-{SALON}")) == 1
    db.execute("UPDATE phone_confirmations SET sent_at = now() - interval '61 seconds'")
    second = send_code(client)  # the newest message
    assert db.count("phone_confirmations") == 1  # one pending code per salon
    if first != second:
        r = client.post("/salon/relink", data={"code": first}, follow_redirects=False)
        assert r.status_code == 422
        link_untouched(client, db)
    assert client.post("/salon/relink", data={"code": second}, follow_redirects=False).status_code == 303


def test_a_gateway_that_cannot_send_leaves_no_code_pending(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    simulator(client).set_fault("down")
    r = client.post("/salon/code", data={"purpose": "relink"}, headers=EN, follow_redirects=False)
    assert r.status_code == 503 and "could not send the code" in r.text
    assert db.count("phone_confirmations") == 0
    simulator(client).set_fault(None)
    send_code(client)  # at once: no pause after a failed send
    link_untouched(client, db)


def test_a_right_code_is_used_once_under_concurrency(portal, partner, db):
    import asyncio

    from portal.salons import store as salons
    from portal.salons.ids import YclientsSalonId
    from portal.whatsapp import phone_confirmation

    client, settings = portal
    active_salon(client, settings, partner[1])
    code = send_code(client)
    runtime = client.app_state["runtime"]

    async def twice():
        async with runtime.pool.acquire() as conn:
            salon = await salons.by_yclients_id(conn, YclientsSalonId(SALON))
        return await asyncio.gather(*(phone_confirmation.check_code(runtime, salon, code) for _ in range(2)))

    outcomes = client.portal.call(twice)
    assert sorted(outcomes) == [phone_confirmation.Checked.CONFIRMED, phone_confirmation.Checked.EXPIRED]


def test_a_lost_link_relinks_without_a_code(portal, partner, db):
    client, settings = portal
    active_salon(client, settings, partner[1])
    client.post(f"/sandbox/whatsapp/{SALON}/logout")
    poll_until(client, "logged_out")
    assert 'data-testid="confirm-relink-yes"' in client.get("/salon/relink").text  # no code asked
    r = client.post("/salon/relink", headers=HX)
    assert r.status_code == 200 and 'data-state="awaiting_scan"' in r.text
    assert simulator(client).sent_texts(f"salon-{SALON}") == []


def test_with_waha_no_logout_leaves_without_the_code_and_the_code_comes_by_send_text(make_settings, db):
    from tests.helpers.gateways.fake_waha import create_fake_waha
    from tests.helpers.servers import serve
    from tests.house.test_safe_methods import PHONE, active_and_connected

    app, waha = create_fake_waha("waha-key")
    waha.status_on_start = "SCAN_QR_CODE"
    with serve(app) as waha_url, partner_server() as (partner_url, market):
        settings = make_settings(
            SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
            YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_GATEWAY="waha", WAHA_URL=waha_url, WAHA_API_KEY="waha-key",
            WAHA_WEBHOOK_HMAC_KEY="hook-key", WHATSAPP_REFRESH_S="0", WHATSAPP_SAFETY_POLL_S="3600")
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            active_and_connected(client, settings, waha, market)
            for action in ("relink", "disconnect"):
                for data in ({}, {"code": "000000"}):
                    assert client.post(f"/salon/{action}", data=data, follow_redirects=False).status_code == 422
            assert not [p for p in waha.paths() if p.endswith(("/logout", "/stop", "/restart")) or "DELETE" in p]
            assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"

            assert client.post("/salon/code", data={"purpose": "relink"}, follow_redirects=False).status_code == 303
            [(session, chat_id, text)] = waha.sent_texts
            assert (session, chat_id) == (f"salon-{SALON}", f"{PHONE}@c.us")  # its own session, its own number
            code = re.search(r"\b\d{6}\b", text).group(0)
            r = client.post("/salon/relink", data={"code": code}, headers=HX)
            assert r.status_code == 200 and 'data-state="awaiting_scan"' in r.text
            assert f"POST /api/sessions/salon-{SALON}/logout" in waha.paths()


def test_a_quoted_salon_name_gets_the_languages_inner_quotes():
    from portal.web.rendering import make_templates

    heading = make_templates().env.from_string('{{ t("salon.heading", name=n|inner_quotes) }}')
    from portal.web.i18n import translator
    assert heading.render(lang="ru", t=translator("ru"), n="Барбершоп «Борода»") == "Салон «Барбершоп „Борода“»"
    assert heading.render(lang="en", t=translator("en"), n='Barbershop "Beard"') == "Salon “Barbershop ‘Beard’”"
    assert heading.render(lang="ru", t=translator("ru"), n="Лилия") == "Салон «Лилия»"


def test_favicon_is_served(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")

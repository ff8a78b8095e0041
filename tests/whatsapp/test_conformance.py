"""The conformance suite: the same scenarios against every gateway the portal can drive.

Each scenario is one test function parametrised by gateway: a fake WAHA built from WAHA's
docs, a fake Evolution API built from Evolution's source (both real HTTP servers on
127.0.0.1, tests/helpers/gateways/), and the in-process simulator. Each runs a real portal
on real PostgreSQL; the gateway's side (the phone, its clock, an outage, its webhooks) is
played through a driver (tests/helpers/gateways/drivers.py). A new gateway is added by
writing its adapter, its fake and its driver: not new tests.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.gateways.drivers import GATEWAYS, WITH_PASSKEY, Driver, driver_for
from tests.helpers.landing import land
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, partner_server
from tests.helpers.staff import API_KEY, staff_env

HX = {"HX-Request": "true"}
PHONE = "79160000042"


@pytest.fixture
def gateway(request) -> Iterator[Driver]:
    with driver_for(request.param) as driver:
        yield driver


@contextlib.contextmanager
def portal(make_settings, driver: Driver, **env: str) -> Iterator[tuple[TestClient, Any]]:
    # Every poll may ask the gateway (no refresh pacing); one failed start opens the breaker.
    settings = make_settings(**driver.env(), **staff_env(), **({
        "WHATSAPP_REFRESH_S": "0", "WHATSAPP_SAFETY_POLL_S": "0.1",
        "QR_BREAKER_FAILURE_THRESHOLD": "1", "QR_BREAKER_RESET_TIMEOUT_S": "2"} | env))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        driver.attach(client)
        yield client, settings


def until(condition: Callable[[], Any], timeout_s: float = 10.0, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(every_s)
    raise AssertionError("condition not met in time")


def widget_state(html: str) -> str:
    found = re.search(r'data-state="([a-z_]+)"', html)
    return found.group(1) if found else "?"


def shown_qr(html: str) -> str | None:
    found = re.search(r'data-qr="([^"]+)"', html)
    return found.group(1) if found else None


def poll_until(client: TestClient, state: str, also: Callable[[str], bool] = lambda html: True) -> str:
    """The owner's widget polling (htmx) until it shows `state`."""
    def seen() -> str | None:
        html = client.get("/onboarding/whatsapp/status", headers=HX).text
        return html if widget_state(html) == state and also(html) else None
    return until(seen)


def start(client: TestClient) -> str:
    return client.post("/onboarding/whatsapp/start", headers=HX).text


GATEWAY = pytest.mark.parametrize("gateway", GATEWAYS, indirect=True)


@GATEWAY
def test_start_shows_the_gateways_qr_and_a_second_start_reuses_it(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9101)
        first = start(client)
        assert widget_state(first) == "awaiting_scan"
        assert shown_qr(first) == gateway.shown_qr("salon-9101") is not None
        again = start(client)  # a second tab, a reload: the same code, no new session
        assert shown_qr(again) == shown_qr(first) and gateway.starts("salon-9101") == 1


@GATEWAY
def test_the_qr_rotates_and_a_cycle_that_ran_out_waits_for_the_owners_press(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9102)
        first = shown_qr(start(client))
        gateway.clock.advance(61)  # the first QR lived its 60 s: the gateway shows the second
        second = gateway.shown_qr("salon-9102")
        assert second is not None and second != first
        db.execute("UPDATE whatsapp_links SET qr_expires_at = now()")  # and the portal's clock
        poll_until(client, "awaiting_scan", lambda html: shown_qr(html) == second)
        gateway.clock.advance(5 * 20)  # six QRs in all: the cycle ran out
        expired = poll_until(client, "expired")
        for _ in range(3):  # polls go on; nobody restarts the session behind the owner's back
            expired = client.get("/onboarding/whatsapp/status", headers=HX).text
        assert widget_state(expired) == "expired" and 'hx-trigger="load' not in expired
        assert 'data-testid="try-again"' in expired and gateway.starts("salon-9102") == 1
        renewed = start(client)  # "Show a new code": one press, a fragment, no reload
        assert widget_state(renewed) == "awaiting_scan" and shown_qr(renewed) not in (None, first, second)
        assert gateway.starts("salon-9102") == 2


@GATEWAY
def test_a_pairing_code_is_the_gateways_own(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9103)
        start(client)
        # The number as understood is confirmed first, then the gateway is asked for the code.
        shown = client.post("/onboarding/whatsapp/pairing-code", data={"phone": "+7 916 000-00-03",
                                                                       "confirmed": "79160000003"}, headers=HX)
        code = gateway.pairing_code("salon-9103")
        assert code and f'data-testid="pairing-code">{code}<' in shown.text


@GATEWAY
def test_a_scan_connects_the_salon_with_the_scanning_phones_number(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9104)
        start(client)
        gateway.scan("salon-9104", PHONE)
        connected = poll_until(client, "connected")
        assert "+7 ••• •••-••-42" in connected and PHONE not in connected
        assert db.fetchval("SELECT phone FROM whatsapp_links") == PHONE


@GATEWAY
def test_a_phone_that_unlinks_the_device_is_lost_and_relinked_by_logout_and_start(make_settings, gateway, db):
    with partner_server() as (url, _), portal(make_settings, gateway, SANDBOX="true", YCLIENTS_API_URL=url,
                                              YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN,
                                              YCLIENTS_APP_ID=str(APP_ID)) as (client, settings):
        land(client, settings.partner_token, salon_id=500001)  # a demo salon the partner knows
        start(client)
        gateway.scan("salon-500001", PHONE)
        poll_until(client, "connected")
        assert client.post("/marketplace/activate", follow_redirects=False).status_code == 303
        gateway.unlink("salon-500001")
        lost = poll_until(client, "logged_out")
        assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_lost'") == 1
        assert 'hx-trigger="load' not in lost  # the owner decides when to link again
        relinked = start(client)  # "Reconnect"
        assert widget_state(relinked) == "awaiting_scan" and shown_qr(relinked) == gateway.shown_qr("salon-500001")
        assert gateway.logged_out("salon-500001")  # the failed session was logged out first
        gateway.scan("salon-500001", "79160000043")
        poll_until(client, "connected")
        payload = json.loads(db.fetchval(
            "SELECT payload FROM marketplace_events WHERE event_type = 'whatsapp_relinked'"))
        assert payload["same_number"] is False


@GATEWAY
def test_a_gateway_that_is_down_opens_the_breaker_and_the_owner_sees_the_retry_screen(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9106)
        gateway.set_down(True)
        failed = start(client)
        assert widget_state(failed) == "failed" and 'data-testid="auto-retry"' in failed
        busy = start(client)  # the breaker is open: no gateway call, a countdown that retries
        assert widget_state(busy) == "busy" and "data-countdown" in busy
        gateway.set_down(False)
        # After the breaker's reset timeout (2 s here) a trial start gets through; the owner's
        # presses are paced as the busy screen's countdown paces them (starts are rate-limited).
        recovered = until(lambda: (html := start(client)) and widget_state(html) == "awaiting_scan" and html,
                          timeout_s=20, every_s=0.5)
        assert shown_qr(recovered) == gateway.shown_qr("salon-9106")


@pytest.mark.parametrize("gateway", WITH_PASSKEY, indirect=True)
def test_the_passkey_step_is_shown_with_its_code_and_completed(make_settings, gateway, db):
    with portal(make_settings, gateway) as (client, settings):
        land(client, settings.partner_token, salon_id=9107)
        start(client)
        gateway.ask_passkey("salon-9107", PHONE, "4821")
        asked = poll_until(client, "passkey")
        assert 'data-testid="passkey-code">4821<' in asked and 'hx-trigger="every' in asked
        assert gateway.starts("salon-9107") == 1
        client.post("/onboarding/whatsapp/passkey-confirm", headers=HX)
        poll_until(client, "connected")
        assert db.fetchval("SELECT phone FROM whatsapp_links") == PHONE


@GATEWAY
def test_a_forged_or_replayed_event_is_refused(make_settings, gateway, db):
    # The safety sweep would read the scan from the gateway's list and connect the link on
    # its own, whatever the webhooks say; kept out of the way, only an event could.
    with portal(make_settings, gateway, WHATSAPP_SAFETY_POLL_S="3600") as (client, settings):
        land(client, settings.partner_token, salon_id=9108)
        start(client)
        gateway.scan("salon-9108", PHONE)
        genuine = gateway.events("salon-9108")
        forged = json.dumps({"event": "session.status", "session": "salon-9108", "me": {"id": "7999@c.us"},
                             "payload": {"status": "WORKING"}, "instance": "salon-9108",
                             "data": {"state": "open", "wuid": "7999@s.whatsapp.net"}}).encode()
        for body, headers in [(forged, {}), (forged, {"X-Webhook-Token": "guess", "X-Webhook-Hmac": "00" * 64}),
                              *[(body, {}) for body, _ in genuine]]:
            assert client.post("/webhook/whatsapp", content=body, headers=headers).status_code == 401
        assert db.fetchval("SELECT phone FROM whatsapp_links") is None
        for body, headers in genuine:
            assert client.post("/webhook/whatsapp", content=body, headers=headers).json() == {"ok": True}
        if genuine:  # the simulator sends no events: everything claiming to be one was refused above
            assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"
        reads = gateway.state_reads("salon-9108")
        for body, headers in genuine:
            assert client.post("/webhook/whatsapp", content=body, headers=headers).json() == {"duplicate": True}
        assert gateway.state_reads("salon-9108") == reads  # a replay costs no gateway call


@GATEWAY
def test_the_session_is_logged_out_on_disconnect_and_removed_on_uninstall(make_settings, gateway, db):
    with portal(make_settings, gateway, WEBHOOK_WORKER_INTERVAL_S="0.1") as (client, settings):
        land(client, settings.partner_token, salon_id=9109)
        start(client)
        gateway.scan("salon-9109", PHONE)
        poll_until(client, "connected")
        r = client.post("/marketplace/admin/salon/9109/disconnect", json={"reason": "owner asked by phone"},
                        headers={"X-API-Key": API_KEY})
        assert r.status_code == 200 and gateway.logged_out("salon-9109")
        assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"
        uninstall = {"salon_id": 9109, "application_id": settings.app_id, "event": "uninstall",
                     "partner_token": settings.partner_token}
        assert client.post("/webhook/yclients", json=uninstall).status_code == 200
        until(lambda: not gateway.exists("salon-9109"))

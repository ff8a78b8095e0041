"""Two portal instances on one database, a fake WAHA, real Chromium: the owner's page polls
instance A while the gateway's webhook for the scan reaches instance B."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from portal.app import create_app
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.servers import free_port, serve


def test_the_scan_reaches_the_owner_through_the_other_instance_without_a_reload(make_settings, browser):
    waha_app, waha = create_fake_waha("waha-key")
    waha.status_on_start = "SCAN_QR_CODE"
    port_a, port_b = free_port(), free_port()
    env = {"WHATSAPP_GATEWAY": "waha", "WAHA_API_KEY": "waha-key", "WAHA_WEBHOOK_HMAC_KEY": "hook-key",
           "WHATSAPP_SAFETY_POLL_S": "3600"}  # no safety poll in time: only the event can do it
    with serve(waha_app) as waha_url:
        settings_a = make_settings(**env, WAHA_URL=waha_url, PORTAL_BASE_URL=f"http://127.0.0.1:{port_a}")
        settings_b = make_settings(**env, WAHA_URL=waha_url, PORTAL_BASE_URL=f"http://127.0.0.1:{port_b}")
        with serve(create_app(settings_a), port=port_a) as a, serve(create_app(settings_b), port=port_b) as b:
            context = browser.new_context(locale="en-US")
            owner = context.new_page()
            owner.goto(f"{a}/sandbox/install/510001")  # Install, then YClients' signed landing on A
            expect(owner.get_by_test_id("qr")).to_be_visible()
            owner.evaluate("window.__notReloaded = true")

            waha.set_status("salon-510001", "WORKING")
            waha.set_me("salon-510001", "79160510001")
            [(url, body, headers)] = waha.webhook_delivery("salon-510001")
            assert url.startswith(a)  # configured by A, which created the session
            assert httpx.post(f"{b}/webhook/whatsapp", content=body, headers=headers).status_code == 200

            expect(owner.get_by_test_id("connected")).to_contain_text("•••-••-01", timeout=5_000)
            assert owner.evaluate("window.__notReloaded") is True
            context.close()

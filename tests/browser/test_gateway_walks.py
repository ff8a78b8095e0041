"""The owner's walk in Chromium with each gateway: the sandbox's signed landing → QR → the
phone scans → connected → activated. With WAHA, WhatsApp's passkey step too: shown with its
code, confirmed, then connected.

The fakes of WAHA and Evolution API are real HTTP servers (tests/helpers/gateways/); their
webhooks reach the live portal over HTTP. The simulator's phone is the sandbox page.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers.axe import assert_accessible
from tests.helpers.gateways.drivers import GATEWAYS, driver_for

SALON = 500001
SESSION = f"salon-{SALON}"


def deliver_events(driver) -> None:
    """The gateway tells the portal what happened, as it would: its webhooks, for real."""
    if driver.name == "waha":
        assert driver.state.emit(SESSION) == [200]
    elif driver.name == "evolution":
        assert set(driver.state.deliver()) <= {200}


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_landing_qr_scan_connected_activated(live_portal, browser, gateway):
    with driver_for(gateway) as driver:
        base, _, _ = live_portal(**driver.env(), WHATSAPP_SAFETY_POLL_S="1")
        context = browser.new_context(locale="en-US")
        owner = context.new_page()
        owner.goto(f"{base}/sandbox/install/{SALON}")  # the landing, signed as YClients does
        qr = owner.get_by_test_id("qr")
        expect(qr).to_be_visible(timeout=15_000)
        if gateway == "simulator":
            phone = context.new_page()
            phone.goto(f"{base}/sandbox/")
            phone.get_by_test_id(f"scan-{SALON}").click()
        else:
            assert qr.get_attribute("data-qr") == driver.shown_qr(SESSION)
            driver.scan(SESSION, "79160000001")
            deliver_events(driver)
        expect(owner.get_by_test_id("connected")).to_contain_text("01", timeout=15_000)
        owner.get_by_test_id("activate").click()
        expect(owner).to_have_url(f"{base}/sandbox/installed/{SALON}", timeout=15_000)
        owner.goto(f"{base}/onboarding")  # the onboarding is over: the salon's own page
        expect(owner).to_have_url(f"{base}/salon")
        expect(owner.get_by_test_id("integration-active")).to_be_visible()
        context.close()


def test_waha_passkey_step_shown_then_completed(live_portal, browser):
    with driver_for("waha") as driver:
        base, _, _ = live_portal(**driver.env(), WHATSAPP_SAFETY_POLL_S="1")
        context = browser.new_context(locale="ru-RU")
        owner = context.new_page()
        owner.goto(f"{base}/sandbox/install/{SALON}")
        expect(owner.get_by_test_id("qr")).to_be_visible(timeout=15_000)
        driver.state.set_me(SESSION, "79160000001")  # scanned; WhatsApp wants the device confirmed
        driver.state.ask_passkey(SESSION)
        deliver_events(driver)
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "passkey", timeout=15_000)
        expect(owner.locator("#link-status")).to_contain_text("ключом доступа")
        assert_accessible(owner, "the passkey step")
        driver.ask_passkey(SESSION, "79160000001", "4821")  # and a code to compare
        deliver_events(driver)
        expect(owner.get_by_test_id("passkey-code")).to_have_text("4821", timeout=15_000)
        expect(owner.locator("#link-status")).to_contain_text("Коды совпадают")
        assert_accessible(owner, "the passkey code to compare")
        owner.get_by_test_id("passkey-confirm").click()
        expect(owner.get_by_test_id("connected")).to_contain_text("01", timeout=15_000)
        assert "POST /api/salon-500001/auth/passkey/confirm" in driver.state.paths()
        owner.get_by_test_id("activate").click()
        expect(owner).to_have_url(f"{base}/sandbox/installed/{SALON}", timeout=15_000)
        context.close()

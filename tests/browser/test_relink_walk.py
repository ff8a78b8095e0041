"""After the onboarding, in Chromium: the owner of an active salon comes back to the salon's
own page; the phone unlinks the device (the sandbox logs the session out at the gateway) and
the open page says so without a reload; the owner scans a new QR with another number and is
connected again, the integration active all along and YClients' partner API called once in
the whole story; then the owner disconnects WhatsApp (asked first, with the code the salon's
own WhatsApp received), recorded in the trail. And a relink of a working link: the code, read
off the sandbox's phone, opens a fresh QR."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server
from tests.helpers.phone_inbox import code_from_phone

SALON = 500001


def test_return_lose_relink_and_disconnect_without_a_second_activation(live_portal, browser, db):
    with partner_server() as (partner_url, market):
        base, _, _ = live_portal(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
                                 YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_SAFETY_POLL_S="1")
        context = browser.new_context(locale="en-US")
        owner, phone = context.new_page(), context.new_page()

        # Onboarding: install, scan, activate (YClients' 301 takes the owner away).
        market.grant(SALON)  # Install at the fake YClients this portal talks to (not the sandbox's own)
        owner.goto(f"{base}/sandbox/")
        market.grant(SALON)  # the sandbox page stands in for the marketplace; "YClients" is `market`
        owner.get_by_test_id(f"install-{SALON}").click()
        expect(owner.get_by_test_id("qr")).to_be_visible()
        phone.goto(f"{base}/sandbox/")
        phone.get_by_test_id(f"scan-{SALON}").click()
        owner.get_by_test_id("activate").click()
        owner.wait_for_url(f"**/installed/{SALON}", timeout=10_000)
        assert install_calls(market) == 1

        # The owner comes back from YClients: the salon's own page, not the onboarding steps.
        owner.goto(f"{base}/sandbox/")
        owner.get_by_test_id(f"install-{SALON}").click()
        expect(owner).to_have_url(f"{base}/salon")
        expect(owner.get_by_test_id("assistant-working")).to_be_visible()
        expect(owner.get_by_test_id("connected")).to_contain_text("+7 ••• •••-••-01")
        expect(owner.get_by_test_id("connected-since")).to_be_visible()
        expect(owner.get_by_text("Now: link")).to_have_count(0)
        owner.evaluate("window.stillTheSamePage = true")

        # The phone unlinks the device; the gateway sends nothing, the page's poll notices.
        phone.goto(f"{base}/sandbox/")
        phone.get_by_test_id(f"logout-{SALON}").click()
        expect(phone.get_by_test_id("sandbox-result")).to_have_class("ok")
        expect(owner.get_by_test_id("whatsapp-lost")).to_contain_text("WhatsApp disconnected", timeout=10_000)
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "logged_out")
        expect(owner.get_by_test_id("phone-input")).to_be_visible()  # or a pairing code, in place

        # A new QR in place, scanned by another number.
        console: list[str] = []
        owner.on("console", lambda m: console.append(m.text))
        owner.get_by_test_id("try-again").click()
        expect(owner.get_by_test_id("qr")).to_be_visible()
        phone.goto(f"{base}/sandbox/")
        phone.locator(f'form[action="/sandbox/whatsapp/{SALON}/scan"] input[name="phone"]').fill("+7 900 000-00-77")
        phone.get_by_test_id(f"scan-{SALON}").click()
        expect(owner.get_by_test_id("assistant-working")).to_be_visible(timeout=10_000)
        expect(owner.get_by_test_id("connected")).to_contain_text("+7 ••• •••-••-77")
        assert owner.evaluate("window.stillTheSamePage") is True  # no reload on the way
        assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) == "active"
        assert install_calls(market) == 1  # the integration stayed on: no second activation

        # The owner disconnects: asked first, in place, with the code from the phone; then done.
        owner.get_by_test_id("disconnect").click()
        expect(owner.get_by_test_id("confirm-disconnect")).to_be_visible()
        owner.get_by_test_id("code-send").click()
        expect(owner.get_by_test_id("code-sent")).to_contain_text("+7 ••• •••-••-77")
        owner.get_by_test_id("code-input").fill(code_from_phone(phone, base, SALON))
        owner.get_by_test_id("confirm-disconnect-yes").click()
        expect(owner.get_by_test_id("whatsapp-lost")).to_be_visible()
        expect(owner.get_by_test_id("confirm-disconnect")).to_have_count(0)  # the question went
        assert not [m for m in console if "htmx:" in m], console
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "logged_out")
        assert install_calls(market) == 1
        context.close()

    trail = [(r["event_type"], json.loads(r["payload"])) for r in db.fetch(
        "SELECT event_type, payload FROM marketplace_events WHERE event_type IN"
        " ('whatsapp_lost', 'whatsapp_relinked', 'whatsapp_disconnected') ORDER BY id")]
    # (A relink of the working link, with the code, is the next test's walk.)
    assert [kind for kind, _ in trail] == ["whatsapp_lost", "whatsapp_relinked",
                                           "whatsapp_lost", "whatsapp_disconnected"]
    assert trail[1][1] == {"phone": "+7 ••• •••-••-77", "previous_phone": "+7 ••• •••-••-01", "same_number": False}
    assert trail[3][1]["by"] == "owner" and trail[3][1]["relink"] is False
    assert db.fetchval("SELECT status FROM whatsapp_links") == "logged_out"


def test_relink_of_a_working_link_with_the_code_from_the_phone(live_portal, browser, db):
    with partner_server() as (partner_url, market):
        base, _, _ = live_portal(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
                                 YCLIENTS_APP_ID=str(APP_ID))
        context = browser.new_context(locale="en-US")
        owner, phone = context.new_page(), context.new_page()
        owner.goto(f"{base}/sandbox/")
        market.grant(SALON)  # the sandbox page stands in for the marketplace; "YClients" is `market`
        owner.get_by_test_id(f"install-{SALON}").click()
        expect(owner.get_by_test_id("qr")).to_be_visible()
        phone.goto(f"{base}/sandbox/")
        phone.get_by_test_id(f"scan-{SALON}").click()
        owner.get_by_test_id("activate").click()
        owner.wait_for_url(f"**/installed/{SALON}", timeout=10_000)
        owner.goto(f"{base}/salon")
        expect(owner.get_by_test_id("assistant-working")).to_be_visible()

        # Relink: the page asks for a code and sends it through the salon's own WhatsApp.
        owner.get_by_test_id("relink").click()
        expect(owner.get_by_test_id("code-needed")).to_contain_text("+7 ••• •••-••-01")
        owner.get_by_test_id("code-send").click()
        expect(owner.get_by_test_id("code-sent")).to_contain_text("+7 ••• •••-••-01")
        code = code_from_phone(phone, base, SALON)
        expect(phone.get_by_test_id(f"phone-message-{SALON}").first).to_contain_text("relink or disconnect")

        # A wrong code changes nothing and says so, in place.
        owner.get_by_test_id("code-input").fill("1" * 6 if code != "1" * 6 else "2" * 6)
        owner.get_by_test_id("confirm-relink-yes").click()
        expect(owner.get_by_test_id("code-error")).to_contain_text("This code is not right")
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "connected")

        # The right code: a fresh QR in place.
        owner.get_by_test_id("code-input").fill(code)
        owner.get_by_test_id("confirm-relink-yes").click()
        expect(owner.get_by_test_id("qr")).to_be_visible(timeout=10_000)
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "awaiting_scan")
        assert install_calls(market) == 1
        context.close()
    assert [r["event_type"] for r in db.fetch(
        "SELECT event_type FROM marketplace_events WHERE event_type LIKE 'phone_confirmation%' ORDER BY id")] == [
        "phone_confirmation_sent", "phone_confirmation_wrong", "phone_confirmation_confirmed"]

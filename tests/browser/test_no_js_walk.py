"""The whole owner story in Chromium with JavaScript off: plain forms and refresh links only.
Landing → a QR (the start form) → the phone scans (the sandbox's plain forms) → refresh →
connected → activation by the plain form → YClients' page → back to the salon's page; then
the phone unlinks the device, the owner relinks with a new QR, and disconnects (two steps and
the code sent through the salon's own WhatsApp).
YClients' partner API is called once in the whole story."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server
from tests.helpers.phone_inbox import code_from_phone

SALON = 500001


def sandbox_action(phone, base, test_id, number=None):
    """The salon's phone, played by the sandbox page (plain forms too)."""
    phone.goto(f"{base}/sandbox/")
    if number:
        phone.locator(f'form[action="/sandbox/whatsapp/{SALON}/scan"] input[name="phone"]').fill(number)
    phone.get_by_test_id(test_id).click()
    expect(phone.get_by_test_id("sandbox-result")).to_have_class("ok")


def refresh_until(owner, name, state):
    """What an owner without JavaScript does: follow the page's refresh link until the state shows."""
    for _ in range(20):
        if owner.locator("#link-status").get_attribute("data-state") == state:
            return
        owner.get_by_role("link", name=name).first.click()
    expect(owner.locator("#link-status")).to_have_attribute("data-state", state)


def test_the_whole_owner_walk_without_javascript(live_portal, browser, db):
    with partner_server() as (partner_url, market):
        base, _, _ = live_portal(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
                                 YCLIENTS_APP_ID=str(APP_ID), WHATSAPP_SAFETY_POLL_S="1")
        context = browser.new_context(locale="en-US", java_script_enabled=False)
        owner, phone = context.new_page(), context.new_page()

        market.grant(SALON)  # Install at the fake YClients this portal talks to (not the sandbox's own)
        owner.goto(f"{base}/sandbox/")
        market.grant(SALON)  # the sandbox page stands in for the marketplace; "YClients" is `market`
        owner.get_by_test_id(f"install-{SALON}").click()
        expect(owner).to_have_url(f"{base}/onboarding")
        if owner.locator("#link-status").get_attribute("data-state") == "idle":
            # nothing happens until the press, and no spinner pretends otherwise
            expect(owner.locator("#link-status .spinner")).to_be_hidden()
            owner.get_by_role("button", name="Show the QR code").click()
        refresh_until(owner, "Refresh the page", "awaiting_scan")
        expect(owner.get_by_test_id("qr")).to_be_visible()
        expect(owner.get_by_test_id("qr-refreshes")).to_be_hidden()  # no promise a script would keep
        # (Playwright's text locators skip <noscript>; innerText is what is rendered)
        assert "After scanning (or when the code expires), refresh the page." in owner.locator("#link-status").inner_text()

        sandbox_action(phone, base, f"scan-{SALON}")
        refresh_until(owner, "Refresh the page", "connected")  # the scan's news reaches the page in ms
        expect(owner.get_by_test_id("connected")).to_contain_text("+7 ••• •••-••-01")
        owner.get_by_role("link", name="Next").click()
        owner.get_by_test_id("activate").click()
        owner.wait_for_url(f"**/installed/{SALON}")  # where YClients' 301 sends the owner
        assert install_calls(market) == 1

        owner.goto(f"{base}/onboarding")  # back from YClients: the salon's own page
        expect(owner).to_have_url(f"{base}/salon")
        expect(owner.get_by_test_id("assistant-working")).to_be_visible()

        # The phone unlinks the device; the gateway says nothing. The page reads a connected link
        # from the gateway at the safety poll's pace (1 s here), so a reload soon shows it.
        sandbox_action(phone, base, f"logout-{SALON}")
        for _ in range(40):
            owner.reload()
            if owner.get_by_test_id("whatsapp-lost").count():
                break
            owner.wait_for_timeout(100)  # an owner pressing reload; nothing to await without JS
        expect(owner.get_by_test_id("whatsapp-lost")).to_be_visible()
        owner.get_by_test_id("try-again").click()
        expect(owner).to_have_url(f"{base}/salon")
        refresh_until(owner, "Refresh the page", "awaiting_scan")
        sandbox_action(phone, base, f"scan-{SALON}", number="+7 900 000-00-77")
        refresh_until(owner, "Refresh the page", "connected")
        expect(owner.get_by_test_id("assistant-working")).to_be_visible()
        expect(owner.get_by_test_id("connected")).to_contain_text("+7 ••• •••-••-77")

        # Disconnect: asked on a page of its own, with the code the salon's WhatsApp received.
        owner.get_by_test_id("disconnect").click()
        expect(owner.get_by_test_id("confirm-disconnect")).to_be_visible()
        owner.get_by_test_id("code-send").click()
        expect(owner).to_have_url(f"{base}/salon/disconnect")
        expect(owner.get_by_test_id("code-sent")).to_contain_text("+7 ••• •••-••-77")
        owner.get_by_test_id("code-input").fill(code_from_phone(phone, base, SALON))
        owner.get_by_test_id("confirm-disconnect-yes").click()
        expect(owner).to_have_url(f"{base}/salon")
        expect(owner.get_by_test_id("whatsapp-lost")).to_be_visible()
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "logged_out")
        assert install_calls(market) == 1  # one activation in the whole story
        context.close()

    assert db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON) == "active"
    events = [r["event_type"] for r in db.fetch(
        "SELECT event_type FROM marketplace_events WHERE event_type IN"
        " ('whatsapp_lost', 'whatsapp_relinked', 'whatsapp_disconnected') ORDER BY id")]
    assert events == ["whatsapp_lost", "whatsapp_relinked", "whatsapp_lost", "whatsapp_disconnected"]

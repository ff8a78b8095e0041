"""The whole walk in Chromium: sandbox Install → QR → simulated scan → Activate → the
sandbox's "installed" page, where YClients' 301 sends the owner."""

import re

from playwright.sync_api import expect

from tests.helpers.partner import APP_ID, PARTNER_TOKEN, install_calls, partner_server


def test_install_scan_activate_lands_on_yclients(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="en-US")
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id("install-500001").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    expect(owner.locator("#activation-panel")).to_have_attribute("data-state", "waiting_whatsapp")

    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("scan-500001").click()

    activate = owner.get_by_test_id("activate")
    expect(activate).to_be_visible(timeout=10_000)  # the panel came alive when WhatsApp connected
    activate.click()
    expect(owner).to_have_url(f"{base}/sandbox/installed/500001", timeout=10_000)
    expect(owner.get_by_test_id("sandbox-installed")).to_be_visible()

    owner.goto(f"{base}/onboarding")  # the onboarding is over: the salon's own page
    expect(owner).to_have_url(f"{base}/salon")
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()
    context.close()


def test_partner_failure_shows_a_sentence_and_try_again(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    page.goto(f"{base}/sandbox/")
    page.get_by_test_id("install-500002").click()
    expect(page.get_by_test_id("qr")).to_be_visible()
    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("partner-fail").click()  # YClients fails from now on
    phone.get_by_test_id("scan-500002").click()
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("activation-error")).to_contain_text("YClients")
    phone.get_by_test_id("partner-none").click()
    page.get_by_test_id("activate").click()
    expect(page).to_have_url(f"{base}/sandbox/installed/500002", timeout=10_000)
    context.close()


def test_a_busy_owner_is_activated_without_a_second_click(live_portal, browser):
    """One activation slot, a partner taking 2 s: the second owner's press is answered
    "busy", and the panel counts down and posts again by itself until it is done."""
    with partner_server(delay_s=2.0) as (partner_url, market):
        base, _, _ = live_portal(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=partner_url,
                                 YCLIENTS_APP_ID=str(APP_ID), ACTIVATION_CONCURRENCY="1",
                                 ACTIVATION_QUEUE_WAIT_S="0.2")
        owners = []
        for salon in (500001, 500002):
            context = browser.new_context(locale="ru-RU")
            owner = context.new_page()
            owner.goto(f"{base}/sandbox/")
            market.grant(salon)
            owner.get_by_test_id(f"install-{salon}").click()
            expect(owner.get_by_test_id("qr")).to_be_visible()
            owner.context.new_page().goto(f"{base}/sandbox/")
            phone = owner.context.pages[-1]
            phone.get_by_test_id(f"scan-{salon}").click()
            expect(owner.get_by_test_id("activate")).to_be_visible(timeout=10_000)
            owners.append(owner)
        first, second = owners

        first.get_by_test_id("activate").click()
        for _ in range(200):  # the partner holds the only slot once it has the first call
            if install_calls(market):
                break
            first.wait_for_timeout(10)
        second.get_by_test_id("activate").click()
        expect(second.get_by_test_id("activation-busy")).to_contain_text("нажимать ничего не нужно")
        expect(second.locator("[data-countdown]")).to_be_visible()
        # No second click: the panel posts again after its countdown and gets through.
        expect(second).to_have_url(re.compile(r".*/installed/500002$"), timeout=20_000)  # YClients' 301
        expect(first).to_have_url(re.compile(r".*/installed/500001$"), timeout=10_000)
        assert install_calls(market) == 2
        for owner in owners:
            owner.context.close()

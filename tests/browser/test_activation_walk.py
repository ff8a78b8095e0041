"""The whole walk in Chromium: sandbox Install → QR → simulated scan → Activate → the
sandbox's "installed" page, where YClients' 301 sends the owner."""

from playwright.sync_api import expect


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

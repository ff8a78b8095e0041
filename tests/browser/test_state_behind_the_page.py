"""Owner pages follow what changes behind them, in Chromium: an uninstall in YClients, a
phone that unlinks the device. No page keeps claiming what is no longer true, and nothing
starts a gateway session for a salon that no longer has the app."""

from __future__ import annotations

from playwright.sync_api import expect

SALON = 500001


def _install_and_scan(context, base: str, salon: int):
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id(f"install-{salon}").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"scan-{salon}").click()
    expect(owner.get_by_test_id("activate")).to_be_visible(timeout=10_000)
    return owner, phone


def test_an_open_salon_page_says_the_app_was_removed_and_starts_no_session(live_portal, browser, db):
    base, _, _ = live_portal(WHATSAPP_SAFETY_POLL_S="1")
    context = browser.new_context(locale="ru-RU")
    owner, phone = _install_and_scan(context, base, SALON)
    owner.get_by_test_id("activate").click()
    expect(owner).to_have_url(f"{base}/sandbox/installed/{SALON}", timeout=10_000)
    owner.goto(f"{base}/salon")
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()

    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"uninstall-1-{SALON}").click()
    expect(phone.get_by_test_id("sandbox-result")).to_be_visible()

    # The open page reloads by itself into the truth: the app is gone, nothing to link.
    expect(owner.get_by_test_id("app-removed")).to_be_visible(timeout=15_000)
    expect(owner.get_by_test_id("integration-active")).to_have_count(0)
    expect(owner.get_by_test_id("qr")).to_have_count(0)
    expect(owner.locator("[hx-trigger]")).to_have_count(0)  # nothing polls or starts any more
    # A direct start (a stale tab, a replayed form) starts nothing either.
    response = owner.request.post(f"{base}/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    assert response.headers.get("hx-refresh") == "true"

    events = [r["event_type"] for r in db.fetch(
        "SELECT event_type FROM marketplace_events ORDER BY id")]
    after = events[events.index("uninstalled"):]
    assert "qr_shown" not in after and "whatsapp_session_deleted" in after, after
    assert db.fetchval("SELECT status FROM whatsapp_links") == "idle"
    context.close()


def test_the_activation_step_notices_a_phone_that_unlinked(live_portal, browser, db):
    base, _, _ = live_portal(WHATSAPP_SAFETY_POLL_S="1")
    context = browser.new_context(locale="ru-RU")
    owner, phone = _install_and_scan(context, base, SALON)
    expect(owner.get_by_test_id("connected")).to_be_visible()
    owner.evaluate("window.stillTheSamePage = true")

    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"logout-{SALON}").click()
    expect(phone.get_by_test_id("sandbox-result")).to_be_visible()

    # Without a reload the step says WhatsApp is disconnected, and Activate is gone.
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "logged_out", timeout=10_000)
    expect(owner.get_by_test_id("connected")).to_have_count(0)
    expect(owner.get_by_test_id("activate")).to_have_count(0)
    expect(owner.locator("#activation-panel")).to_have_attribute("data-state", "waiting_whatsapp")
    assert owner.evaluate("window.stillTheSamePage") is True
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"
    context.close()

"""Every owner state and every dashboard page, in Russian, on a phone (390×844) and a
desktop (1280×800): photographed into a temporary folder (SCREENSHOT_DIR to choose one;
never the repository), and each checked to fit its screen (nothing wider than the phone; a
staff table scrolls inside its own box) and to pass axe-core (no serious or critical
violation, no content outside landmarks)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_support import sign_in
from tests.helpers.screens import look, screenshot_dir
from tests.helpers.staff import staff_env

SCREENS = {"phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
           "desktop": {"viewport": {"width": 1280, "height": 800}}}


@pytest.fixture(scope="module")
def shots():
    folder = screenshot_dir()
    print(f"\nscreenshots: {folder}")
    return folder


def _sandbox(context, base: str, test_id: str, salon: int | None = None, phone: str | None = None) -> None:
    page = context.new_page()
    page.goto(f"{base}/sandbox/")
    if phone and salon:
        page.locator(f'form[action="/sandbox/whatsapp/{salon}/scan"] input[name="phone"]').fill(phone)
    page.get_by_test_id(test_id).click()
    expect(page.get_by_test_id("sandbox-result")).to_be_visible()
    page.close()


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_owner_state(live_portal, browser, shots, screen):
    base, _, _ = live_portal(WHATSAPP_SAFETY_POLL_S="1", QR_BREAKER_FAILURE_THRESHOLD="2",
                             QR_BREAKER_RESET_TIMEOUT_S="600", WHATSAPP_RETRY_S="30")
    context = browser.new_context(locale="ru-RU", **SCREENS[screen])
    owner = context.new_page()

    def state(name: str) -> None:
        owner.bring_to_front()
        look(owner, shots, f"owner-{screen}-{name}")

    owner.goto(f"{base}/onboarding")
    state("01-no-session")
    owner.goto(f"{base}/sandbox/")
    state("02-sandbox")

    owner.goto(f"{base}/sandbox/install/500001")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    state("03-qr")
    owner.get_by_test_id("phone-input").fill("12")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-error")).to_be_visible()
    state("04-phone-error")
    owner.get_by_test_id("phone-input").fill("8 916 555-44-33")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-confirm")).to_be_visible()
    state("05-phone-confirm")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("pairing-code")).to_be_visible()
    state("06-pairing-code")
    owner.get_by_test_id("back-to-qr").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()

    _sandbox(context, base, "scan-500001")
    expect(owner.get_by_test_id("activate")).to_be_visible(timeout=10_000)
    state("07-connected-activate")
    _sandbox(context, base, "logout-500001")
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "logged_out", timeout=10_000)
    state("08-onboarding-whatsapp-lost")
    owner.get_by_test_id("try-again").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    _sandbox(context, base, "scan-500001")
    expect(owner.get_by_test_id("activate")).to_be_visible(timeout=10_000)
    _sandbox(context, base, "partner-fail")
    owner.get_by_test_id("activate").click()
    expect(owner.get_by_test_id("activation-error")).to_be_visible()
    state("09-activation-error")
    _sandbox(context, base, "partner-none")
    owner.get_by_test_id("activate").click()
    owner.wait_for_url("**/installed/500001", timeout=10_000)
    state("10-back-in-yclients")

    owner.goto(f"{base}/salon")
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()
    state("11-salon-working")
    owner.get_by_test_id("relink").click()
    expect(owner.get_by_test_id("confirm-relink")).to_be_visible()
    state("12-salon-confirm-relink")
    owner.get_by_test_id("confirm-cancel").click()
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()
    _sandbox(context, base, "logout-500001")
    expect(owner.get_by_test_id("whatsapp-lost")).to_be_visible(timeout=10_000)
    state("13-salon-whatsapp-lost")
    _sandbox(context, base, "uninstall-1-500001")
    expect(owner.get_by_test_id("app-removed")).to_be_visible(timeout=15_000)
    state("14-app-removed")

    _sandbox(context, base, "fault-down")
    owner.goto(f"{base}/sandbox/install/500002")
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "failed")
    state("15-could-not-start")
    owner.get_by_test_id("try-again").click()  # the second failure opens the breaker
    owner.get_by_test_id("try-again").click()
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "busy")
    state("16-busy")
    context.close()


def test_an_expired_qr(live_portal, browser, shots):
    base, _, _ = live_portal(SIMULATOR_QR_FIRST_TTL_S="0.6", SIMULATOR_QR_NEXT_TTL_S="0.3", SIMULATOR_QR_COUNT="2",
                             QR_POLL_INTERVAL_S="0.3", WHATSAPP_REFRESH_S="0.2")
    for screen, options in SCREENS.items():
        context = browser.new_context(locale="ru-RU", **options)
        owner = context.new_page()
        owner.goto(f"{base}/sandbox/install/50000{1 if screen == 'phone' else 2}")
        expect(owner.locator("#link-status")).to_have_attribute("data-state", "expired", timeout=10_000)
        look(owner, shots, f"owner-{screen}-17-qr-expired")
        context.close()


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_dashboard_page(live_portal, browser, shots, screen):
    base, _, _ = live_portal(**staff_env())
    context = browser.new_context(locale="ru-RU", **SCREENS[screen])
    owner = context.new_page()
    for salon in (500001, 500002, 500003):
        owner.goto(f"{base}/sandbox/install/{salon}")
        expect(owner.get_by_test_id("qr")).to_be_visible()
    _sandbox(context, base, "scan-500001")
    page = context.new_page()
    sign_in(page, base)
    for name, path in (("overview", "/admin"), ("salons", "/admin/salons"), ("salon", "/admin/salons/500001"),
                       ("salon-confirm", "/admin/salons/500001/disconnect"), ("system", "/admin/system"),
                       ("breaker-confirm", "/admin/system/breaker?action=force_open"), ("audit", "/admin/audit")):
        page.goto(f"{base}{path}")
        look(page, shots, f"staff-{screen}-{name}")
    page.context.clear_cookies()
    page.goto(f"{base}/admin/login")
    look(page, shots, f"staff-{screen}-login")
    context.close()

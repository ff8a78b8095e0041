"""Linking WhatsApp in real Chromium: QR and scan, the busy screen and recovery, pairing
by phone number on a phone-sized screen."""

import re

from playwright.sync_api import expect


def test_qr_appears_then_a_scan_connects(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="en-US")
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/500001")
    qr = owner.get_by_test_id("qr")
    expect(qr).to_be_visible()
    expect(qr.locator("svg")).to_be_visible()
    assert qr.get_attribute("data-qr").startswith("2@")

    phone = context.new_page()  # the sandbox plays the salon's phone
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("scan-500001").click()
    expect(phone.get_by_test_id("sandbox-result")).to_have_text("Done.")

    expect(owner.get_by_test_id("connected")).to_contain_text("+7 ••• •••-••-01", timeout=10_000)
    expect(owner.locator("#link-phone")).to_have_count(0)  # the phone form went with the link
    context.close()


def install_with_the_gateway_down(context, base: str, salon: int, console: list | None = None):
    """The sandbox makes the gateway fail, then an owner installs: (control page, owner page);
    the owner page's console errors go to `console`."""
    control = context.new_page()
    control.goto(f"{base}/sandbox/")
    control.get_by_test_id("fault-down").click()
    expect(control.get_by_test_id("sandbox-result")).to_have_text("Done.")
    owner = context.new_page()
    if console is not None:
        owner.on("console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None)
    owner.goto(f"{base}/sandbox/install/{salon}")
    owner.evaluate("window.__notReloaded = true")
    return control, owner


def test_breaker_opens_shows_the_busy_screen_then_recovers_without_reload(live_portal, browser):
    base, _, _ = live_portal(QR_BREAKER_FAILURE_THRESHOLD="2", QR_BREAKER_RESET_TIMEOUT_S="3")
    context = browser.new_context(locale="en-US")
    control, owner = install_with_the_gateway_down(context, base, 500002)
    status = owner.locator("#link-status")
    expect(status).to_have_attribute("data-state", "failed")  # first failure, on load
    owner.get_by_test_id("try-again").click()  # second failure opens the breaker
    expect(status).to_have_attribute("data-state", "failed")
    owner.get_by_test_id("try-again").click()
    expect(status).to_have_attribute("data-state", "busy")
    expect(status).to_contain_text("WhatsApp connection is busy right now")
    countdown = owner.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^[0-3]$"))

    control.get_by_test_id("fault-none").click()
    # The busy screen retries by itself when the countdown ends; the QR arrives in place.
    expect(owner.get_by_test_id("qr")).to_be_visible(timeout=15_000)
    assert owner.evaluate("window.__notReloaded") is True
    context.close()


def test_pairing_code_on_a_phone(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/500003")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    form_box = owner.get_by_test_id("phone-input").bounding_box()
    status_box = owner.locator("#link-status").bounding_box()
    assert form_box["y"] < status_box["y"], "on a phone the phone-number option comes first"

    owner.get_by_test_id("phone-input").fill("12")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-error")).to_be_visible()

    owner.get_by_test_id("phone-input").fill("+7 (916) 555-44-33")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-confirm")).to_contain_text("+7 916 555-44-33")
    owner.get_by_test_id("phone-submit").click()
    code = owner.get_by_test_id("pairing-code")
    expect(owner.get_by_test_id("phone-error")).to_have_count(0)  # the earlier error went with it
    expect(code).to_have_text(re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$"))

    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("code-500003").fill(code.inner_text())
    phone.get_by_test_id("enter-code-500003").click()
    expect(phone.get_by_test_id("sandbox-result")).to_be_visible()
    expect(owner.get_by_test_id("connected")).to_contain_text("33", timeout=10_000)
    assert owner.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_a_failed_start_retries_by_itself_and_the_qr_appears_when_the_gateway_is_back(live_portal, browser):
    base, _, _ = live_portal(WHATSAPP_RETRY_S="1", QR_BREAKER_FAILURE_THRESHOLD="50")
    context = browser.new_context(locale="en-US")
    console: list[str] = []
    control, owner = install_with_the_gateway_down(context, base, 500003, console)
    status = owner.locator("#link-status")
    expect(status).to_have_attribute("data-state", "failed")
    expect(owner.get_by_test_id("auto-retry")).to_be_visible()  # it says it will try again
    expect(owner.get_by_test_id("try-again")).to_be_visible()  # and the button stays

    control.get_by_test_id("fault-none").click()
    expect(control.get_by_test_id("sandbox-result")).to_have_text("Done.")
    expect(owner.get_by_test_id("qr")).to_be_visible(timeout=15_000)  # no click
    assert owner.evaluate("window.__notReloaded") is True
    assert console == [], console  # no CSP refusal on the way, no missing favicon
    context.close()


def test_asking_for_a_pairing_code_shows_that_it_is_working_while_the_gateway_hangs(live_portal, browser):
    """The gateway hangs on the code request: from the press until the failure sentence the
    owner sees a spinner and a sentence, not just a faded button."""
    base, _, _ = live_portal(WAHA_TIMEOUT_S="3")
    context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844}, is_mobile=True)
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/500002")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    control = context.new_page()
    control.goto(f"{base}/sandbox/")
    control.get_by_test_id("fault-slow").click()
    expect(control.get_by_test_id("sandbox-result")).to_be_visible()

    owner.bring_to_front()  # a background tab runs no CSS transitions
    waiting = owner.get_by_test_id("phone-waiting")
    expect(waiting).to_have_css("opacity", "0")
    owner.get_by_test_id("phone-input").fill("+7 916 555-44-33")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-confirm")).to_be_visible()
    owner.get_by_test_id("phone-submit").click()
    expect(waiting).to_have_css("opacity", "1", timeout=1_000)
    expect(waiting).to_contain_text("Запрашиваем код")
    # Then the gateway's silence ends in a sentence, and the spinner goes.
    expect(owner.get_by_test_id("phone-error")).to_contain_text("WhatsApp", timeout=10_000)
    expect(owner.get_by_test_id("qr")).to_be_visible()  # the QR still works meanwhile
    expect(waiting).to_have_css("opacity", "0")
    context.close()

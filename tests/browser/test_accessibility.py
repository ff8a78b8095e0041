"""axe-core in real Chromium over every owner page state and the support dashboard, in
Russian and English: zero serious or critical violations (tests/helpers/axe.py). Also the
things axe cannot judge alone: the polled widget sits in a stable polite live region, the QR
is an image named in the page's language, errors are alerts, focus is visible."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers.axe import assert_accessible
from tests.helpers.phone_inbox import code_from_phone
from tests.helpers.staff import PASSWORD, USERNAME, staff_env

LOCALES = [("ru-RU", "ru"), ("en-US", "en")]


def scan(context, base, salon, phone=None):
    page = context.new_page()
    page.goto(f"{base}/sandbox/")
    if phone:
        page.locator(f'form[action="/sandbox/whatsapp/{salon}/scan"] input[name="phone"]').fill(phone)
    page.get_by_test_id(f"scan-{salon}").click()
    expect(page.get_by_test_id("sandbox-result")).to_be_visible()
    page.close()


@pytest.mark.parametrize(("locale", "lang"), LOCALES)
def test_every_owner_page_state(live_portal, browser, locale, lang):
    base, _, _ = live_portal(WHATSAPP_SAFETY_POLL_S="1")
    context = browser.new_context(locale=locale)
    owner = context.new_page()

    owner.goto(f"{base}/onboarding")  # no session yet: the start page
    assert owner.locator("html").get_attribute("lang") == lang
    assert_accessible(owner, "the start page")

    owner.goto(f"{base}/sandbox/")
    assert_accessible(owner, "the sandbox")

    owner.goto(f"{base}/sandbox/install/500001")  # the landing: onboarding with a QR
    qr = owner.get_by_test_id("qr")
    expect(qr).to_be_visible()
    name = "QR-код WhatsApp" if lang == "ru" else "WhatsApp QR code"
    expect(owner.get_by_role("img", name=name)).to_be_visible()
    live = owner.locator("#link-live")
    assert live.get_attribute("aria-live") == "polite"
    live.evaluate("el => { el.dataset.probe = 'kept'; }")
    assert_accessible(owner, "the QR")

    owner.get_by_test_id("phone-input").fill("12")  # a field error, announced
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-error")).to_have_attribute("role", "alert")
    assert_accessible(owner, "the phone form's error")
    owner.get_by_test_id("phone-input").fill("+7 916 555-44-33")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("phone-confirm")).to_be_visible()  # the number as understood
    assert_accessible(owner, "the number to confirm")
    owner.get_by_test_id("phone-submit").click()
    expect(owner.get_by_test_id("pairing-code")).to_be_visible()
    assert_accessible(owner, "the pairing code")
    # The widget was swapped twice; the live region around it is the same element.
    assert owner.locator("#link-live").get_attribute("data-probe") == "kept"

    scan(context, base, 500001, phone="+7 916 555-44-33")
    expect(owner.get_by_test_id("activate")).to_be_visible(timeout=10_000)
    assert_accessible(owner, "connected, activation ready")
    owner.get_by_test_id("activate").click()
    expect(owner.get_by_test_id("sandbox-installed")).to_be_visible(timeout=10_000)
    assert_accessible(owner, "YClients' installed page (sandbox)")

    owner.goto(f"{base}/salon")
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()
    assert_accessible(owner, "the salon's page")
    owner.get_by_test_id("relink").click()
    expect(owner.get_by_test_id("confirm-relink")).to_be_visible()
    assert_accessible(owner, "the relink confirmation")
    owner.get_by_test_id("code-send").click()
    expect(owner.get_by_test_id("code-input")).to_be_visible()
    assert_accessible(owner, "the relink confirmation, asking for the code")
    inbox = context.new_page()
    owner.get_by_test_id("code-input").fill(code_from_phone(inbox, base, 500001))
    assert_accessible(inbox, "the sandbox with the phone's messages")
    inbox.close()
    owner.get_by_test_id("confirm-relink-yes").click()
    expect(owner.get_by_test_id("whatsapp-lost")).to_be_visible()
    expect(owner.get_by_test_id("qr")).to_be_visible(timeout=10_000)
    assert_accessible(owner, "relink in progress")
    owner.goto(f"{base}/salon/disconnect")
    assert_accessible(owner, "the disconnect confirmation page")

    owner.goto(f"{base}/marketplace/landing?salon_id=1&user_data=x&user_data_sign=y")
    assert_accessible(owner, "the error page")
    context.close()


@pytest.mark.parametrize(("locale", "lang"), LOCALES)
def test_failure_busy_and_activation_error_states(live_portal, browser, locale, lang):
    base, _, _ = live_portal(QR_BREAKER_FAILURE_THRESHOLD="2", QR_BREAKER_RESET_TIMEOUT_S="600",
                             WHATSAPP_RETRY_S="600")
    context = browser.new_context(locale=locale)
    control = context.new_page()
    control.goto(f"{base}/sandbox/")
    control.get_by_test_id("fault-down").click()
    expect(control.get_by_test_id("sandbox-result")).to_be_visible()

    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/500002")
    status = owner.locator("#link-status")
    expect(status).to_have_attribute("data-state", "failed")
    assert_accessible(owner, "a failed start")
    owner.get_by_test_id("try-again").click()
    owner.get_by_test_id("try-again").click()
    expect(status).to_have_attribute("data-state", "busy")
    assert_accessible(owner, "the busy screen")
    context.close()


@pytest.mark.parametrize(("locale", "lang"), LOCALES)
def test_activation_error_and_done(live_portal, browser, locale, lang):
    base, _, _ = live_portal()
    context = browser.new_context(locale=locale)
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id("install-500003").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    scan(context, base, 500003)
    # YClients fails from now on (before the landing, it would refuse the landing itself).
    control = context.new_page()
    control.goto(f"{base}/sandbox/")
    control.get_by_test_id("partner-fail").click()
    owner.get_by_test_id("activate").click()
    expect(owner.get_by_test_id("activation-error")).to_have_attribute("role", "alert")
    assert_accessible(owner, "an activation error")

    control.goto(f"{base}/sandbox/")  # YClients is back; a second tab activates first
    control.get_by_test_id("partner-none").click()
    control.goto(f"{base}/onboarding")
    control.get_by_test_id("activate").click()
    expect(control.get_by_test_id("sandbox-installed")).to_be_visible(timeout=10_000)
    owner.get_by_test_id("activate").click()  # already active: the panel says done
    expect(owner.get_by_test_id("activation-done")).to_be_visible(timeout=10_000)
    assert_accessible(owner, "activation done")
    context.close()


@pytest.mark.parametrize(("locale", "lang"), LOCALES)
def test_dashboard_pages(live_portal, browser, locale, lang):
    base, _, _ = live_portal(**staff_env())
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(f"{base}/sandbox/install/500001")
    expect(page.get_by_test_id("qr")).to_be_visible()

    page.goto(f"{base}/admin/login")
    assert page.locator("html").get_attribute("lang") == lang
    assert_accessible(page, "the staff login")
    page.fill("#username", USERNAME)
    page.fill("#password", "wrong")
    page.get_by_test_id("login-submit").click()
    assert_accessible(page, "a failed login")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{base}/admin")
    assert_accessible(page, "the overview")
    for path, where in [("/admin/salons", "the salons table"), ("/admin/salons/500001", "a salon"),
                        ("/admin/salons/500001/disconnect", "the confirm page"), ("/admin/system", "system"),
                        ("/admin/audit", "the audit"), ("/admin/salons/999999", "a missing salon")]:
        page.goto(f"{base}{path}")
        assert_accessible(page, where)
    page.goto(f"{base}/admin/salons/500001/disconnect")
    page.locator("form[method=post] button[type=submit]").last.click()  # no reason: a field error
    assert_accessible(page, "the confirm page's error")
    context.close()


def test_focus_is_visible(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="en-US")
    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/500001")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    for _ in range(30):  # every control is reached by Tab and shows where the focus is
        owner.keyboard.press("Tab")
        style = owner.evaluate("""() => { const el = document.activeElement; const s = getComputedStyle(el);
            return {tag: el.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }""")
        if style["tag"] == "BODY":
            break
        assert style["outline"] != "none" and style["width"] >= 2, style
    owner.get_by_test_id("phone-input").focus()
    owner.keyboard.type("+7 916 555-44-33")
    owner.keyboard.press("Enter")  # the form is used with the keyboard alone
    expect(owner.get_by_test_id("phone-confirm")).to_be_visible()
    owner.get_by_test_id("phone-submit").focus()
    owner.keyboard.press("Enter")
    expect(owner.get_by_test_id("pairing-code")).to_be_visible()
    context.close()

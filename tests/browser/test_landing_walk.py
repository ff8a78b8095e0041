"""From the sandbox's Install button to the onboarding page, in Russian and in English."""

import pytest
from playwright.sync_api import Page, expect


@pytest.mark.parametrize("locale, install, step", [("ru-RU", "Установить", "Активация"), ("en-US", "Install", "Activation")])
def test_install_lands_on_onboarding(live_portal, browser, locale, install, step):
    base, _, _ = live_portal()
    context = browser.new_context(locale=locale)
    page: Page = context.new_page()
    page.goto(f"{base}/sandbox/")
    expect(page.locator(".sandbox-banner")).to_be_visible()
    page.get_by_test_id("install-500001").click()
    expect(page).to_have_url(f"{base}/onboarding")
    # YClients' user_data names the user, not the salon: the branch is named by its id.
    expect(page.get_by_test_id("salon-heading")).to_contain_text("500001")
    expect(page.locator("#step-activation")).to_contain_text(step)
    assert "user_data" not in page.url
    context.close()


def test_language_switch_on_a_phone(live_portal, browser):
    base, _, _ = live_portal()
    context = browser.new_context(locale="ru-RU", viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/sandbox/install/500002")
    expect(page.get_by_test_id("salon-heading")).to_contain_text("500002")
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("#step-activation")).to_contain_text("Activation")
    # Nothing wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()

"""A chain in Chromium (demo mode): the owner installs the app for two branches at once,
links one WhatsApp number and activates — both branches are connected at YClients, each
once. Then one branch is uninstalled and installed again on its own."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_support import sign_in
from tests.helpers.staff import staff_env

LEAD, BRANCH = 500002, 500003


def test_two_branches_install_activate_then_one_is_uninstalled_and_reinstalled(live_portal, browser, db):
    base, _, _ = live_portal(**staff_env())
    owner = browser.new_context(locale="ru-RU").new_page()
    phone = owner.context.new_page()
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id("install-chain").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()  # one onboarding, one number for both
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"scan-{LEAD}").click()
    owner.get_by_test_id("activate").click()
    owner.wait_for_url(f"**/installed/{LEAD}", timeout=10_000)
    statuses = dict(db.fetch("SELECT yclients_salon_id, integration_status FROM salons"))
    assert statuses == {LEAD: "active", BRANCH: "active"}
    # Back from YClients, the owner's salon page lists the branches its number serves.
    owner.goto(f"{base}/sandbox/install/{LEAD}")
    expect(owner).to_have_url(f"{base}/salon")
    expect(owner.get_by_test_id("salon-branches")).to_contain_text(f"(#{BRANCH}): подключён")

    staff = browser.new_context(locale="ru-RU").new_page()
    sign_in(staff, base)
    expect(staff.get_by_test_id("install-counts")).to_contain_text("Установок: 1 (филиалов: 2)")
    staff.goto(f"{base}/admin/salons/{BRANCH}")
    expect(staff.get_by_test_id("install-branches")).to_contain_text(f"#{LEAD}")
    expect(staff.locator(f'[data-branch-status="{LEAD}"]')).to_have_text("активен")

    # YClients uninstalls the second branch only (its uninstall webhook names that branch).
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"uninstall-1-{BRANCH}").click()
    expect(phone.get_by_test_id("sandbox-result")).to_have_class("ok")
    assert dict(db.fetch("SELECT yclients_salon_id, integration_status FROM salons")) == {
        LEAD: "active", BRANCH: "uninstalled"}

    # Installed again, on its own: its own onboarding, its own number, activated.
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id(f"install-{BRANCH}").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"scan-{BRANCH}").click()
    owner.get_by_test_id("activate").click()
    owner.wait_for_url(f"**/installed/{BRANCH}", timeout=10_000)
    assert dict(db.fetch("SELECT yclients_salon_id, integration_status FROM salons")) == {
        LEAD: "active", BRANCH: "active"}
    staff.reload()
    expect(staff.get_by_test_id("install-branches")).to_have_count(0)  # two installs now

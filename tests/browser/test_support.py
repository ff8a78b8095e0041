"""Support staff in Chromium: find a salon stuck with an expired QR and read its timeline;
reset an open breaker from the system panel; see a sandbox uninstall on the dashboard."""

from playwright.sync_api import expect

from tests.helpers.staff import PASSWORD, USERNAME, staff_env


def sign_in(page, base):
    page.goto(f"{base}/admin")
    expect(page).to_have_url(f"{base}/admin/login")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{base}/admin")


def test_staff_find_a_salon_with_an_expired_qr_and_read_its_timeline(live_portal, browser):
    base, _, _ = live_portal(**staff_env(), SIMULATOR_QR_FIRST_TTL_S="0.6", SIMULATOR_QR_NEXT_TTL_S="0.3",
                             SIMULATOR_QR_COUNT="2", QR_POLL_INTERVAL_S="0.3", WHATSAPP_REFRESH_S="0.2")
    owner = browser.new_context(locale="ru-RU").new_page()
    owner.goto(f"{base}/sandbox/install/500002")
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "expired", timeout=10_000)
    owner.context.close()

    staff = browser.new_context(locale="en-US").new_page()
    sign_in(staff, base)
    row = staff.get_by_test_id("attention-500002")
    expect(row).to_contain_text("QR code expired")
    row.get_by_role("link").click()
    expect(staff.get_by_test_id("salon-whatsapp")).to_contain_text("expired")
    timeline = staff.get_by_test_id("timeline")
    expect(timeline.locator('[data-event="qr_expired"]')).to_be_visible()
    expect(timeline.locator('[data-event="qr_shown"]')).to_be_visible()
    expect(timeline.locator('[data-event="landed"]')).to_be_visible()
    staff.context.close()


def test_staff_reset_an_open_breaker(live_portal, browser):
    base, _, _ = live_portal(**staff_env(), QR_BREAKER_FAILURE_THRESHOLD="1", QR_BREAKER_RESET_TIMEOUT_S="600")
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{base}/sandbox/")
    page.get_by_test_id("fault-down").click()
    page.goto(f"{base}/sandbox/install/500001")
    expect(page.locator("#link-status")).to_have_attribute("data-state", "failed")
    page.get_by_test_id("try-again").click()
    expect(page.locator("#link-status")).to_have_attribute("data-state", "busy")

    sign_in(page, base)
    page.goto(f"{base}/admin/system")
    expect(page.get_by_test_id("breaker-state")).to_have_attribute("data-state", "open")
    page.get_by_test_id("breaker-reset").click()
    # Asked first, like every per-salon action; nothing changed yet.
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset (close)?")
    page.goto(f"{base}/admin/system")
    expect(page.get_by_test_id("breaker-state")).to_have_attribute("data-state", "open")
    page.get_by_test_id("breaker-reset").click()
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("breaker-state")).to_have_attribute("data-state", "closed")
    expect(page.get_by_test_id("admin-message")).to_contain_text("closed")
    page.goto(f"{base}/admin/audit")
    expect(page.get_by_test_id("audit-table").locator("[data-action=breaker_reset]")).to_contain_text("breaker reset")
    context.close()


def test_uninstall_from_the_sandbox_shows_on_the_dashboard(live_portal, browser):
    base, _, _ = live_portal(**staff_env())
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{base}/sandbox/install/500003")
    expect(page.get_by_test_id("qr")).to_be_visible()
    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("scan-500003").click()
    page.get_by_test_id("activate").click()
    expect(page).to_have_url(f"{base}/sandbox/installed/500003", timeout=10_000)

    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id("uninstall-1-500003").click()
    expect(phone.get_by_test_id("sandbox-result")).to_have_text("Done.")

    sign_in(page, base)
    page.goto(f"{base}/admin/salons?status=uninstalled")
    expect(page.locator('[data-salon="500003"]')).to_contain_text("uninstalled")
    page.goto(f"{base}/admin/salons/500003")
    expect(page.get_by_test_id("salon-status")).to_have_text("uninstalled")
    expect(page.get_by_test_id("timeline").locator('[data-event="uninstalled"]')).to_be_visible()
    context.close()

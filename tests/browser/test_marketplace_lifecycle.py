"""The install's whole lifecycle in the sandbox, as YClients runs it: Install (pending) →
scan → Activate (the callback; a 200 `{"success": true}` this time) → active → Freeze →
Pay → active again → Uninstall → not installed → Install again (pending)."""

from playwright.sync_api import expect

SALON = 500003


def test_install_activate_freeze_pay_uninstall_install_again(live_portal, browser, db):
    base, _, _ = live_portal()
    context = browser.new_context(locale="en-US")
    yclients = context.new_page()
    yclients.goto(f"{base}/sandbox/")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("not installed")
    yclients.get_by_test_id("answer-json").click()  # YClients answers the callback 200 {"success": true}

    owner = context.new_page()
    owner.goto(f"{base}/sandbox/install/{SALON}")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    yclients.goto(f"{base}/sandbox/")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("pending")
    yclients.get_by_test_id(f"scan-{SALON}").click()
    owner.get_by_test_id("activate").click()
    # No Location from YClients: the owner stays with us, on the salon's own page.
    expect(owner).to_have_url(f"{base}/salon", timeout=10_000)
    expect(owner.get_by_test_id("assistant-working")).to_be_visible()

    def status() -> str:
        return db.fetchval("SELECT integration_status FROM salons WHERE yclients_salon_id = $1", SALON)

    yclients.goto(f"{base}/sandbox/")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("(active)")
    yclients.get_by_test_id(f"freeze-1-{SALON}").click()
    expect(yclients.get_by_test_id("sandbox-result")).to_have_text("Done.")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("freezed")
    assert status() == "frozen"
    yclients.get_by_test_id(f"payment-1-{SALON}").click()
    expect(yclients.get_by_test_id("sandbox-result")).to_have_text("Done.")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("(active)")
    assert status() == "active"
    events = [r["event_type"] for r in db.fetch(
        "SELECT event_type FROM marketplace_events e JOIN salons s ON s.id = e.salon_id"
        " WHERE s.yclients_salon_id = $1 ORDER BY e.id", SALON)]
    assert events[-2:] == ["frozen", "unfrozen"]

    yclients.get_by_test_id(f"uninstall-{SALON}").click()
    expect(yclients.get_by_test_id("sandbox-result")).to_have_text("Done.")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("not installed")
    assert status() == "uninstalled"
    again = yclients.get_by_test_id(f"install-{SALON}")
    expect(again).to_have_text("Install again")
    again.click()  # the owner installs the app again: YClients holds it pending for our callback
    yclients.goto(f"{base}/sandbox/")
    expect(yclients.get_by_test_id(f"install-status-{SALON}")).to_contain_text("pending")
    context.close()

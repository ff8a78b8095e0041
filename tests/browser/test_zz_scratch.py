from playwright.sync_api import expect

OUT = "/tmp/h19/shots"


def test_scratch(live_portal, browser):
    base, _, _ = live_portal(QR_BREAKER_FAILURE_THRESHOLD="50")
    context = browser.new_context(locale="ru-RU")
    control = context.new_page()
    control.goto(f"{base}/sandbox/")
    control.get_by_test_id("fault-down").click()
    owner = context.new_page()
    logs = []
    owner.on("console", lambda m: logs.append(m.text))
    owner.goto(f"{base}/sandbox/install/500002")
    expect(owner.locator("#link-status")).to_have_attribute("data-state", "failed")
    owner.wait_for_timeout(1500)
    owner.get_by_test_id("try-again").click()
    owner.wait_for_timeout(1500)
    control.get_by_test_id("fault-none").click()
    expect(owner.get_by_test_id("qr")).to_be_visible(timeout=15000)
    r = owner.goto(f"{base}/favicon.ico")
    print("FAVICON", r.status)
    print("LOGS", logs)
    print("STYLES", owner.evaluate("[...document.querySelectorAll('[style]')].map(e => e.outerHTML.slice(0, 200))"))
    context.close()

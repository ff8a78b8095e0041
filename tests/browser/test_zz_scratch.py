from playwright.sync_api import expect

SALON = 500001
OUT = "/tmp/h19/shots"


def test_scratch(live_portal, browser):
    import os
    os.makedirs(OUT, exist_ok=True)
    base, _, _ = live_portal(WHATSAPP_SAFETY_POLL_S="1")
    context = browser.new_context(locale="ru-RU", viewport={"width": 390, "height": 844}, is_mobile=True)
    owner = context.new_page()
    logs = []
    owner.on("console", lambda m: logs.append(m.text))
    owner.goto(f"{base}/sandbox/install/{SALON}")
    expect(owner.get_by_test_id("qr")).to_be_visible()
    phone = context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"scan-{SALON}").click()
    owner.bring_to_front()
    owner.get_by_test_id("activate").click()
    owner.wait_for_url("**/installed/**")
    owner.goto(f"{base}/salon")
    owner.screenshot(path=f"{OUT}/salon_connected.png", full_page=True)
    owner.get_by_test_id("relink").click()
    expect(owner.get_by_test_id("confirm-relink")).to_be_visible()
    owner.screenshot(path=f"{OUT}/salon_confirm.png", full_page=True)
    print("BEFORE", owner.evaluate("document.querySelectorAll('#salon-confirm').length"))
    with owner.expect_response(lambda r: r.url.endswith("/salon/relink") and r.request.method == "POST") as info:
        owner.get_by_test_id("confirm-relink-yes").click()
    body = info.value.text()
    import re
    print("IDS", re.findall(r'<div id="([^"]+)"[^>]*', body))
    print("OOB", re.findall(r'<[^>]*hx-swap-oob[^>]*>', body))
    expect(owner.get_by_test_id("qr")).to_be_visible()
    owner.wait_for_timeout(500)
    owner.screenshot(path=f"{OUT}/salon_relinked.png", full_page=True)
    print("LOGS", logs)
    print("CONFIRM COUNT", owner.get_by_test_id("confirm-relink").count(), "PHONE", owner.get_by_test_id("phone-input").count())
    context.close()

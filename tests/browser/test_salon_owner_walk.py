"""Who may open a salon, in Chromium (demo mode: the sandbox plays YClients).

The owner installs, links WhatsApp and activates; hours later they come back with the very
same marketplace link and land on their salon's page. Another YClients user opens the app
for that salon and is refused with the explanation; staff see who tried, and hand the salon
over when its installer has left.
"""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.test_support import sign_in
from tests.helpers.staff import staff_env

SALON = 500001


def test_the_owner_returns_with_the_old_link_and_another_user_is_refused(live_portal, browser, db):
    base, _, _ = live_portal(**staff_env())
    owner = browser.new_context(locale="ru-RU").new_page()
    owner.goto(f"{base}/sandbox/")
    owner.get_by_test_id(f"install-{SALON}").click()
    expect(owner.get_by_test_id("qr")).to_be_visible()
    phone = owner.context.new_page()
    phone.goto(f"{base}/sandbox/")
    phone.get_by_test_id(f"scan-{SALON}").click()
    owner.get_by_test_id("activate").click()
    owner.wait_for_url(f"**/installed/{SALON}", timeout=10_000)
    owner.context.close()

    # The link YClients opens for this owner (the same one, every time, from the app's Settings).
    link = httpx.get(f"{base}/sandbox/install/{SALON}", follow_redirects=False).headers["location"]
    db.execute("UPDATE salons SET landed_at = now() - interval '6 hours', owner_bound_at = now() - interval '6 hours'")

    returning = browser.new_context(locale="ru-RU").new_page()
    returning.goto(f"{base}{link}")
    expect(returning).to_have_url(f"{base}/salon")
    expect(returning.get_by_test_id("assistant-working")).to_be_visible()
    returning.context.close()

    stranger = browser.new_context(locale="ru-RU").new_page()
    stranger.goto(f"{base}/sandbox/")
    stranger.get_by_test_id(f"other-user-{SALON}").click()
    expect(stranger.get_by_role("alert")).to_contain_text(
        "Этот филиал подключает другой пользователь YClients")
    expect(stranger.locator("main")).to_contain_text("поддержка может передать его вам")
    # The stranger got no way in: the salon's page sends them away.
    stranger.goto(f"{base}/salon")
    expect(stranger.get_by_test_id("assistant-working")).to_have_count(0)
    stranger.context.close()

    staff = browser.new_context(locale="en-US").new_page()
    sign_in(staff, base)
    alert = staff.get_by_test_id(f"landing-alert-{SALON}")
    expect(alert).to_contain_text("user 990001 arrived, but user 5000011 is connecting this branch")
    alert.get_by_role("link").click()
    expect(staff.get_by_test_id("salon-owner-user")).to_contain_text("YClients user 5000011")
    # The installer left: staff hand the salon over to the other user (two steps, audited).
    staff.get_by_test_id("action-hand_over").click()
    staff.get_by_test_id("hand-over-user").fill("990001")
    staff.fill("#reason", "The installer left the salon; the new manager asked by phone")
    staff.get_by_test_id("confirm").click()
    expect(staff.get_by_test_id("salon-owner-user")).to_contain_text("YClients user 990001")
    staff.context.close()

    newcomer = browser.new_context(locale="ru-RU").new_page()
    newcomer.goto(f"{base}/sandbox/install/{SALON}?as=other")
    expect(newcomer).to_have_url(f"{base}/salon")
    expect(newcomer.get_by_test_id("assistant-working")).to_be_visible()
    newcomer.context.close()

"""PostgreSQL restarts under a live portal, in Chromium: a real server of the test's own is
stopped and started again. While it is away the owner's widget says "back in a moment" and
keeps polling (503 + Retry-After, never a 500), staff get a clear page, and when it is back
the QR returns by itself, without a reload."""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import expect

from portal.platform.embedded_postgres import EmbeddedPostgres
from tests.browser.test_support import sign_in
from tests.helpers import database
from tests.helpers.screens import look, screenshot_dir
from tests.helpers.staff import staff_env


def test_a_database_restart_never_shows_a_500(live_portal, browser):
    folder = Path(tempfile.mkdtemp(prefix="portal-outage-"))
    server = EmbeddedPostgres(folder)
    pg = database.TestServer(server.start())
    try:
        database.run(pg.create_template())
        dsn = database.run(pg.create_database())
        base, _, _ = live_portal(DATABASE_URL=dsn, QR_POLL_INTERVAL_S="0.5", **staff_env())
        context = browser.new_context(locale="ru-RU")
        owner = context.new_page()
        answers: list[tuple[int, str]] = []
        owner.on("response", lambda r: answers.append((r.status, r.url)))
        owner.goto(f"{base}/sandbox/install/500001")
        expect(owner.get_by_test_id("qr")).to_be_visible()
        owner.evaluate("window.stillTheSamePage = true")
        staff = browser.new_context(locale="ru-RU").new_page()
        sign_in(staff, base)

        server.stop()
        status = owner.locator("#link-status")
        expect(status).to_have_attribute("data-state", "unavailable", timeout=10_000)
        expect(status).to_contain_text("Пробуем снова сами")
        shots = screenshot_dir()
        look(owner, shots, "owner-desktop-18-database-away")
        polls_while_away = len(answers)
        staff_page = staff.goto(f"{base}/admin")
        assert staff_page.status == 503 and staff_page.headers["retry-after"] == "5"
        expect(staff.get_by_role("heading", level=1)).to_have_text("Сервис ненадолго недоступен")
        look(staff, shots, "staff-desktop-database-away")

        server = EmbeddedPostgres(folder)
        server.start()
        # The staff page comes back by itself too (portal.js reloads it after Retry-After).
        expect(staff.locator("h1")).not_to_have_text("Сервис ненадолго недоступен", timeout=15_000)
        expect(owner.get_by_test_id("qr")).to_be_visible(timeout=20_000)  # back by itself
        assert owner.evaluate("window.stillTheSamePage") is True
        assert len(answers) > polls_while_away  # it kept polling through the outage
        assert [a for a in answers if a[0] >= 500 and a[0] != 503] == [], answers
        assert any(a[0] == 503 for a in answers)
        assert staff.goto(f"{base}/admin").status == 200
        context.close()
        staff.context.close()
    finally:
        server.stop()

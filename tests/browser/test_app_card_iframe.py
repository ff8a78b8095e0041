"""Inside YClients' app card: the app listed with `is_iframe` opens the portal in a
cross-origin iframe. A tiny "YClients" page on another origin (http://localhost:<port>, while
the portal is http://127.0.0.1:<port>: another site) frames the sandbox's Install, and the
owner's whole walk — landing, QR, scan, Activate, YClients' page after the 301 — happens in
the frame. With EMBED_IN_YCLIENTS off, the same frame is refused.

Chromium treats http://localhost and http://127.0.0.1 as potentially trustworthy, so the
`Secure` cookie is stored and sent there over plain http (checked below, not assumed)."""

from playwright.sync_api import expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.helpers.servers import free_port, serve

SALON = 500001


def yclients_card(portal: str):
    """YClients' app card: our registration URL in an iframe, and a script of its own that
    tries to act for the owner (a cross-site POST carrying the owner's cookie)."""
    async def card(request):
        return HTMLResponse(f"""<!doctype html><title>YClients</title>
<iframe id="card" src="{portal}/sandbox/install/{SALON}" style="width:100%;height:1200px"></iframe>
<script>
window.hostile = () => fetch("{portal}/marketplace/activate",
  {{method: "POST", credentials: "include", mode: "no-cors"}}).then(() => "sent", () => "blocked");
</script>""")
    return Starlette(routes=[Route("/", card)])


def test_the_owners_whole_walk_works_inside_a_cross_origin_app_card(live_portal, browser, db):
    card_port = free_port()
    base, _, _ = live_portal(EMBED_IN_YCLIENTS="true", YCLIENTS_FRAME_HOSTS=f"localhost:{card_port}")
    with serve(yclients_card(base), port=card_port) as card_url:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        page.goto(card_url.replace("127.0.0.1", "localhost") + "/")
        frame = page.frame_locator("#card")
        expect(frame.get_by_test_id("qr")).to_be_visible(timeout=10_000)  # the landing's cookie held

        phone = context.new_page()
        phone.goto(f"{base}/sandbox/")
        phone.get_by_test_id(f"scan-{SALON}").click()
        activate = frame.get_by_test_id("activate")
        expect(activate).to_be_visible(timeout=10_000)  # htmx polls inside the frame kept the owner

        # YClients' own page (another site) posts to us with the owner's cookie: refused.
        assert page.evaluate("window.hostile()") == "sent"
        assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"

        activate.click()
        expect(frame.get_by_test_id("sandbox-installed")).to_be_visible(timeout=10_000)  # YClients' 301, in the card
        assert db.fetchval("SELECT integration_status FROM salons") == "active"

        session = next(c for c in context.cookies() if c["name"] == "portal_session")
        assert (session["sameSite"], session["secure"]) == ("None", True)
        context.close()


def test_without_embedding_the_app_card_cannot_show_the_portal(live_portal, browser):
    card_port = free_port()
    base, _, _ = live_portal()
    with serve(yclients_card(base), port=card_port) as card_url:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        page.goto(card_url.replace("127.0.0.1", "localhost") + "/")
        # frame-ancestors 'self': Chromium shows nothing of ours in YClients' frame.
        expect(page.frame_locator("#card").get_by_test_id("qr")).to_have_count(0, timeout=3_000)
        context.close()

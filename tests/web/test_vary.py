"""`Vary: HX-Request` on every page and fragment, set once by one middleware."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.web.htmx import VaryOnHtmx
from tests.helpers.landing import land
from tests.helpers.staff import sign_in, staff_env

HX = {"HX-Request": "true"}


def varies(response) -> list[str]:
    return [v.strip().lower() for line in response.headers.get_list("vary") for v in line.split(",")]


def test_the_page_and_its_fragments_vary_on_htmx_once(client, settings):
    land(client, settings.partner_token, salon_id=21)
    page = client.get("/onboarding")
    fragment = client.post("/onboarding/whatsapp/start", headers=HX)
    poll = client.get("/onboarding/whatsapp/status?v=000000", headers=HX)
    for r in (page, fragment, poll):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert varies(r).count("hx-request") == 1
    assert "<html" in page.text and "<html" not in fragment.text


def test_error_pages_and_fragments_vary_on_any_path(client):
    for headers in ({}, HX):
        r = client.get("/no-such-page", headers=headers)
        assert r.status_code == 404 and varies(r).count("hx-request") == 1


def test_the_dashboards_table_and_page_vary(make_settings):
    with TestClient(create_app(make_settings(**staff_env())), base_url="http://127.0.0.1:8000") as c:
        sign_in(c)
        table = c.get("/admin/salons", headers={**HX, "HX-Target": "salon-table"})
        page = c.get("/admin/salons")
    assert "<html" in page.text and "<html" not in table.text
    assert varies(table).count("hx-request") == 1 and varies(page).count("hx-request") == 1


def test_json_answers_are_left_alone(client):
    r = client.get("/livez")
    assert r.headers["content-type"] == "application/json" and "hx-request" not in varies(r)


def _app(handler) -> TestClient:
    # GZip outermost, as a deployment might add it: it appends Accept-Encoding to our Vary.
    return TestClient(Starlette(routes=[Route("/", handler)],
                                middleware=[Middleware(GZipMiddleware, minimum_size=1), Middleware(VaryOnHtmx)]))


def test_joins_a_vary_already_set_without_repeating_itself():
    async def own_vary(request: Request) -> Response:
        return HTMLResponse("<p>" + "x" * 100, headers={"Vary": "Accept-Language"})

    async def already(request: Request) -> Response:
        return HTMLResponse("<p>" + "x" * 100, headers={"Vary": "Accept-Language, hx-request"})

    async def star(request: Request) -> Response:
        return HTMLResponse("<p>", headers={"Vary": "*"})

    r = _app(own_vary).get("/", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert varies(r) == ["accept-language", "hx-request", "accept-encoding"]
    assert varies(_app(already).get("/", headers={"Accept-Encoding": "gzip"})) == [
        "accept-language", "hx-request", "accept-encoding"]
    assert "hx-request" not in varies(_app(star).get("/"))  # "*" says it all already


def test_only_html_is_marked():
    async def json(request: Request) -> Response:
        return JSONResponse({"ok": True})

    assert varies(_app(json).get("/")) == ["accept-encoding"]  # GZip's own, nothing of ours

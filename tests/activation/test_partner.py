"""The partner client against the sandbox's partner API, over real HTTP.

The sandbox plays YClients; a tiny "odd" app plays the ways a real server or proxy can
misbehave (HTML, 403, redirects without Location, echoed secrets).
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from portal.activation.partner import PartnerClient, PartnerError
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api
from tests.helpers.servers import free_port, serve

TOKEN = "partner-token-5f2c9d0e71"
APP_ID = 777
SALON = 500001
API_KEY = "salon-api-key-9b1e4a7c3d"
HOOKS = ["https://portal.example.com/webhooks/yclients"]


@pytest.fixture
def market() -> SandboxMarketplace:
    port = free_port()
    # public_base is the sandbox itself, so a followed redirect would show up in market.calls.
    market = SandboxMarketplace(
        f"http://127.0.0.1:{port}", partner_token=TOKEN, application_id=APP_ID, hang_s=5
    )
    market.grant(SALON)  # the owner pressed Install: YClients waits for our callback
    return market


@pytest.fixture
def yclients_url(market):
    with serve(create_partner_api(market), port=httpx.URL(market.public_base).port) as url:
        yield url


@pytest.fixture
async def client(yclients_url):
    async with PartnerClient(yclients_url, TOKEN, timeout_s=5) as partner:
        yield partner


async def _odd(request: Request) -> Response:
    """Misbehaviours, chosen by the first path segment of the client's base URL."""
    case = request.path_params["case"]
    if case == "html":
        return HTMLResponse("<html><body>Добро пожаловать в YClients</body></html>")
    if case == "forbidden":
        return JSONResponse({"success": False, "data": None, "meta": {"message": "Forbidden"}}, 403)
    if case == "no-location":
        return Response(status_code=302)
    if case == "relative":
        return Response("<html>Moved</html>", 301, {"Location": "/sandbox/installed/1"})
    if case == "javascript":
        return Response(status_code=301, headers={"Location": "javascript:alert(1)"})
    if case == "gateway":
        return HTMLResponse("<html><h1>502 Bad Gateway</h1></html>", 502)
    if case == "echo":
        # A server that repeats our secrets back: in its message and in its body.
        body = (await request.body()).decode()
        auth = request.headers.get("authorization", "")
        meta = {"message": f"Ключ {body} отклонён ({auth})"}
        return JSONResponse({"success": False, "data": body, "meta": meta}, 422)
    if case == "json-false":
        return JSONResponse({"success": False, "data": None, "meta": {}}, 200)
    if case == "json-string-true":
        return JSONResponse({"success": "true"}, 200)
    if case == "json-201":
        return JSONResponse({"success": True}, 201)
    if case == "empty-204":
        return Response(status_code=204)
    if case == "headers":
        data = {"authorization": request.headers.get("authorization"),
                "accept": request.headers.get("accept")}
        return JSONResponse({"success": True, "data": data, "meta": {}})
    return PlainTextResponse("Not Found", 404)


@pytest.fixture(scope="module")
def odd_url():
    app = Starlette(routes=[Route("/{case}/{rest:path}", _odd, methods=["GET", "POST"])])
    with serve(app) as url:
        yield url


async def _finish(partner: PartnerClient, *, api_key: str = API_KEY, application_id=APP_ID):
    return await partner.finish_install(
        yclients_salon_id=SALON, application_id=application_id, api_key=api_key, webhook_urls=HOOKS
    )


async def _failure(partner: PartnerClient, **kwargs) -> PartnerError:
    with pytest.raises(PartnerError) as caught:
        await _finish(partner, **kwargs)
    return caught.value


# --- finishing the install -------------------------------------------------------------


async def test_301_returns_the_location_without_following_it(client, market):
    location = await _finish(client)

    assert location == f"{market.public_base}/installed/{SALON}"
    # Only the install call reached "YClients": the installed page was never requested.
    assert market.calls == [("POST", "/partner/callback/redirect")]
    assert market.installed[SALON]["api_key"] == API_KEY
    assert market.installed[SALON]["webhook_urls"] == HOOKS


async def test_200_success_true_is_the_other_documented_success(client, market):
    market.install_answer = "json"

    assert await _finish(client) is None  # no Location: the owner's next page is ours to choose

    assert market.installed[SALON]["status"] == "active"
    assert market.installed[SALON]["api_key"] == API_KEY
    assert market.calls == [("POST", "/partner/callback/redirect")]


@pytest.mark.parametrize("case, status", [("json-false", 200), ("json-string-true", 200), ("json-201", 201),
                                          ("empty-204", 204), ("html", 200)])
async def test_any_other_2xx_is_bad_response(odd_url, case, status):
    async with PartnerClient(f"{odd_url}/{case}", TOKEN) as partner:
        error = await _failure(partner)
    assert (error.kind, error.status) == ("bad_response", status)


async def test_the_fake_follows_the_documented_lifecycle(client, market):
    # uninstalled → (grant) pending → (callback) active → freezed → (payment) active → uninstalled
    assert await client.install_status(SALON, APP_ID) == "pending"
    await _finish(client)
    assert await client.install_status(SALON, APP_ID) == "active"
    assert market.freeze(SALON) and await client.install_status(SALON, APP_ID) == "freezed"
    assert market.pay(SALON) and await client.install_status(SALON, APP_ID) == "active"
    assert not market.pay(SALON)  # a payment unfreezes only a frozen install
    logs = (await client.get_installation(SALON, APP_ID))["logs"]
    await client.uninstall(SALON, APP_ID)
    assert await client.install_status(SALON, APP_ID) is None
    steps = [(e["status_from"], e["status_to"]) for e in logs]
    assert steps == [("uninstalled", "pending"), ("pending", "active"), ("active", "freezed"),
                     ("freezed", "active")]


async def test_install_again_after_an_uninstall_waits_pending_then_activates(client, market):
    await _finish(client)
    await client.uninstall(SALON, APP_ID)
    market.grant(SALON)  # "Install again"
    assert await client.install_status(SALON, APP_ID) == "pending"
    assert await _finish(client) == f"{market.public_base}/installed/{SALON}"
    assert await client.install_status(SALON, APP_ID) == "active"


async def test_relative_location_is_made_absolute_and_its_html_body_ignored(odd_url):
    async with PartnerClient(f"{odd_url}/relative", TOKEN) as partner:
        assert await _finish(partner) == f"{odd_url}/sandbox/installed/1"


async def test_a_second_install_even_with_the_same_api_key_is_already_installed(client, market):
    # As YClients documents it: a salon that has the app answers 422 "already installed".
    await _finish(client)
    installed_at = market.installed[SALON]["installed_at"]

    error = await _failure(client)

    assert (error.kind, error.status, error.message) == (
        "already_installed", 422, "Пользователь уже установил это приложение")
    assert market.installed[SALON]["installed_at"] == installed_at
    assert len(market.calls) == 2


async def test_another_api_key_for_an_installed_salon_is_already_installed(client, market):
    await _finish(client)

    error = await _failure(client, api_key="another-key-0000")

    assert (error.kind, error.status) == ("already_installed", 422)
    assert "уже установил" in error.message
    assert market.installed[SALON]["api_key"] == API_KEY


async def test_already_installed_fault_is_recognised_by_its_message(client, market):
    market.fault = "already_installed"
    assert (await _failure(client)).kind == "already_installed"


async def test_validation_422_is_invalid_with_yclients_message(client, market):
    error = await _failure(client, application_id=APP_ID + 1)

    assert (error.kind, error.status) == ("invalid", 422)
    assert error.message == "Переданы некорректные параметры"
    assert error.safe_summary == "partner 422 invalid"
    assert market.pending(SALON)  # the install still waits, untouched


async def test_empty_api_key_is_refused_by_the_sandbox(client, market):
    error = await _failure(client, api_key="")
    assert error.kind == "invalid"
    assert market.pending(SALON)  # the install still waits, untouched


async def test_wrong_partner_token_is_auth(yclients_url, market):
    async with PartnerClient(yclients_url, "not-our-token") as partner:
        error = await _failure(partner)
    assert (error.kind, error.status) == ("auth", 401)
    assert market.pending(SALON)  # the install still waits, untouched


async def test_unauthorized_fault_is_auth(client, market):
    market.fault = "unauthorized"
    assert (await _failure(client)).kind == "auth"


async def test_403_is_auth(odd_url):
    async with PartnerClient(f"{odd_url}/forbidden", TOKEN) as partner:
        error = await _failure(partner)
    assert (error.kind, error.status, error.message) == ("auth", 403, "Forbidden")


async def test_500_is_server_with_message(client, market):
    market.fault = "fail"
    error = await _failure(client)
    assert (error.kind, error.status) == ("server", 500)
    assert error.message == "Внутренняя ошибка сервера"


async def test_html_502_is_server_with_an_excerpt_and_no_message(odd_url):
    async with PartnerClient(f"{odd_url}/gateway", TOKEN) as partner:
        error = await _failure(partner)
    assert (error.kind, error.status, error.message) == ("server", 502, None)
    assert "502 Bad Gateway" in error.excerpt


async def test_hang_times_out_within_the_deadline(yclients_url, market):
    market.fault = "hang"
    started = time.monotonic()
    async with PartnerClient(yclients_url, TOKEN, timeout_s=0.3) as partner:
        error = await _failure(partner)
    assert time.monotonic() - started < 1.0
    assert (error.kind, error.status) == ("timeout", None)


async def test_closed_port_is_unreachable():
    async with PartnerClient(f"http://127.0.0.1:{free_port()}", TOKEN, timeout_s=2) as partner:
        error = await _failure(partner)
    assert (error.kind, error.status, error.safe_summary) == (
        "unreachable", None, "partner unreachable"
    )


async def test_html_200_where_a_301_was_expected_is_bad_response(odd_url):
    async with PartnerClient(f"{odd_url}/html", TOKEN) as partner:
        error = await _failure(partner)
    assert (error.kind, error.status, error.message) == ("bad_response", 200, None)
    assert "Добро пожаловать" in error.excerpt


@pytest.mark.parametrize("case", ["no-location", "javascript"])
async def test_redirect_without_a_usable_location_is_bad_response(odd_url, case):
    async with PartnerClient(f"{odd_url}/{case}", TOKEN) as partner:
        error = await _failure(partner)
    assert error.kind == "bad_response"
    assert error.message is None


async def test_requests_carry_the_partner_token_and_v2_accept(odd_url):
    async with PartnerClient(f"{odd_url}/headers", TOKEN) as partner:
        seen = await partner.get_installation(SALON, APP_ID)
    assert seen == {
        "authorization": f"Bearer {TOKEN}",
        "accept": "application/vnd.yclients.v2+json",
    }


async def test_injected_transport_receives_the_install_body():
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(301, headers={"Location": "https://yc.test/done"})

    transport = httpx.MockTransport(handler)
    partner = PartnerClient("https://yc.test/marketplace", TOKEN, transport=transport)
    async with partner:
        assert await _finish(partner) == "https://yc.test/done"
    assert str(sent[0].url) == "https://yc.test/marketplace/partner/callback/redirect"
    assert httpx.Response(200, content=sent[0].content).json() == {
        "salon_id": SALON, "application_id": APP_ID, "api_key": API_KEY, "webhook_urls": HOOKS,
    }


async def test_works_with_the_sandbox_mounted_under_a_prefix(market):
    port = httpx.URL(market.public_base).port
    app = Starlette(routes=[Mount("/sandbox/api", app=create_partner_api(market))])
    with serve(app, port=port) as url:
        async with PartnerClient(f"{url}/sandbox/api", TOKEN) as partner:
            await _finish(partner)
            assert await partner.install_status(SALON, APP_ID) == "active"
    assert market.calls == [
        ("POST", "/partner/callback/redirect"),
        ("GET", f"/salon/{SALON}/application/{APP_ID}"),
    ]


# --- reading and removing an installation ------------------------------------------------


async def test_install_status_has_exactly_the_documented_fields(client, market):
    await _finish(client)

    data = await client.get_installation(SALON, APP_ID)

    # YClients' documented answer: connection status, payments, status log; no key at all.
    assert set(data) == {"connection_status", "payments", "logs"}
    assert set(data["connection_status"]) == {"status", "created_at"}
    assert data["connection_status"]["status"] == "active"
    assert time.strptime(data["connection_status"]["created_at"], "%Y-%m-%d %H:%M:%S")
    assert all(set(entry) == {"changed_at", "status_from", "status_to", "source"} for entry in data["logs"])
    assert API_KEY not in repr(data) and API_KEY[:4] not in repr(data)
    assert await client.install_status(SALON, APP_ID) == "active"
    market.set_status(SALON, "freezed")
    assert await client.install_status(SALON, APP_ID) == "freezed"


async def test_install_status_without_connection_status_is_bad_response(odd_url):
    async with PartnerClient(f"{odd_url}/headers", TOKEN) as partner:
        with pytest.raises(PartnerError) as caught:
            await partner.install_status(SALON, APP_ID)
    assert caught.value.kind == "bad_response"


@pytest.mark.parametrize("location", ["https://evil.example/steal", "http://127.0.0.1.evil.example/x",
                                      "https://yclients.com.evil.example/"])
async def test_a_redirect_off_yclients_hosts_is_a_partner_failure(location, caplog):
    app = Starlette(routes=[Route("/partner/callback/redirect", methods=["POST"],
                                  endpoint=lambda r: Response(status_code=301, headers={"Location": location}))])
    with serve(app) as url, caplog.at_level(logging.WARNING, logger="portal.activation.partner"):
        async with PartnerClient(url, TOKEN, redirect_hosts=("yclients.com",)) as partner:
            error = await _failure(partner)
    assert (error.kind, error.status) == ("bad_response", 301)
    assert "not YClients'" in caplog.text


async def test_a_redirect_to_an_allowed_host_or_the_api_host_is_accepted():
    app = Starlette(routes=[Route("/partner/callback/redirect", methods=["POST"], endpoint=lambda r: Response(
        status_code=301, headers={"Location": r.headers["x-to"]}))])
    with serve(app) as url:
        async with PartnerClient(url, TOKEN, redirect_hosts=("YClients.com",)) as partner:
            for target in ("https://yclients.com/after", f"{url}/sandbox/installed/1"):
                partner._http.headers["x-to"] = target
                assert await _finish(partner) == target


async def test_get_installation_of_a_salon_without_the_app_is_none(client):
    assert await client.get_installation(SALON + 1, APP_ID) is None


async def test_html_404_is_a_wrong_url_not_a_missing_install(odd_url):
    async with PartnerClient(f"{odd_url}/nowhere", TOKEN) as partner:
        with pytest.raises(PartnerError) as caught:
            await partner.get_installation(SALON, APP_ID)
    assert (caught.value.kind, caught.value.status) == ("invalid", 404)


async def test_get_installation_with_html_200_is_bad_response(odd_url):
    async with PartnerClient(f"{odd_url}/html", TOKEN) as partner:
        with pytest.raises(PartnerError) as caught:
            await partner.get_installation(SALON, APP_ID)
    assert caught.value.kind == "bad_response"


async def test_uninstall_removes_the_install(client, market):
    await _finish(client)

    await client.uninstall(SALON, APP_ID)

    assert SALON not in market.installed
    assert await client.get_installation(SALON, APP_ID) is None
    with pytest.raises(PartnerError) as caught:
        await client.uninstall(SALON, APP_ID)
    assert (caught.value.kind, caught.value.status) == ("invalid", 404)


async def test_ids_must_be_integers(client, market):
    with pytest.raises(TypeError):
        await client.get_installation("1/../../x", APP_ID)
    assert market.calls == []


# --- secrets never leak --------------------------------------------------------------------


async def _scenario(name: str, market, yclients_url, odd_url) -> tuple[str, float]:
    """Arrange one failure kind; returns (base_url, timeout_s) for the client."""
    if name == "auth":
        market.fault = "unauthorized"
    elif name == "already_installed":
        market.install(SALON, "another-key-0000", HOOKS)
    elif name == "server":
        market.fault = "fail"
    elif name == "timeout":
        market.fault = "hang"
        return yclients_url, 0.3
    elif name == "unreachable":
        return f"http://127.0.0.1:{free_port()}", 2
    elif name in ("bad_response", "echo"):
        return f"{odd_url}/{'html' if name == 'bad_response' else 'echo'}", 5
    return yclients_url, 5


@pytest.mark.parametrize(
    "scenario, kind",
    [
        ("auth", "auth"),
        ("invalid", "invalid"),
        ("already_installed", "already_installed"),
        ("server", "server"),
        ("timeout", "timeout"),
        ("unreachable", "unreachable"),
        ("bad_response", "bad_response"),
        ("echo", "invalid"),
    ],
)
async def test_no_failure_reveals_the_api_key_or_token(
    scenario, kind, market, yclients_url, odd_url, caplog
):
    base_url, timeout_s = await _scenario(scenario, market, yclients_url, odd_url)
    caplog.set_level(logging.DEBUG)
    async with PartnerClient(base_url, TOKEN, timeout_s=timeout_s) as partner:
        application_id = APP_ID + 1 if scenario == "invalid" else APP_ID
        error = await _failure(partner, application_id=application_id)

    assert error.kind == kind
    exposed = [str(error), repr(error), *map(str, error.args), *map(str, vars(error).values())]
    exposed += [record.getMessage() for record in caplog.records]
    for text in exposed:
        assert API_KEY not in text
        assert TOKEN not in text
    if scenario == "echo":  # the echo really carried the key: it was blanked, not absent
        assert "***" in error.message and "***" in error.excerpt
        assert len(error.message) <= 200 and len(error.excerpt) <= 120


# --- the sandbox itself ----------------------------------------------------------------------


async def test_server_to_server_callback_answers_201(yclients_url, market):
    body = {"salon_id": SALON, "application_id": APP_ID, "api_key": API_KEY,
            "webhook_urls": HOOKS, "channels": ["whatsapp"]}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        created = await http.post(f"{yclients_url}/partner/callback", json=body)
        bad = await http.post(f"{yclients_url}/partner/callback", json={**body, "channels": "x"})

    assert created.status_code == 201
    assert created.json()["data"] == {"salon_id": SALON, "application_id": APP_ID}
    assert bad.status_code == 422 and "channels" in bad.json()["meta"]["errors"]
    assert market.installed[SALON]["status"] == "active"


async def test_salon_list_pages_and_caps_count_at_1000(yclients_url, market):
    for salon_id in (3, 1, 2):
        market.install(salon_id, f"key-{salon_id}", HOOKS)
    url = f"{yclients_url}/application/{APP_ID}/salons"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        page2 = await http.get(url, params={"page": 2, "count": 2})
        too_many = await http.get(url, params={"count": 1001})

    assert [s["salon_id"] for s in page2.json()["data"]] == [3]
    assert page2.json()["meta"]["count"] == 3
    assert too_many.status_code == 422 and "count" in too_many.json()["meta"]["errors"]


async def test_unauthenticated_calls_are_refused_with_the_envelope_and_recorded(
    yclients_url, market
):
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{yclients_url}/partner/callback/redirect", json={})
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["meta"]["message"]
    assert market.calls == [("POST", "/partner/callback/redirect")]


def test_unknown_fault_mode_is_refused():
    market = SandboxMarketplace("http://127.0.0.1:1/sandbox")
    with pytest.raises(ValueError):
        market.fault = "explode"
    assert market.fault is None
    assert market.redirect_after_install(5) == "http://127.0.0.1:1/sandbox/installed/5"

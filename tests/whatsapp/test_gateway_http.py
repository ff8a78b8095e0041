"""What both HTTP adapters share (`portal/whatsapp/gateways/http.py`), checked through each
adapter's public surface: the headers sent, redirects refused, which failures are logged and
how, and the per-gateway refusals that stay unlogged conflicts."""

import logging
from collections.abc import Callable

import httpx
import pytest

from portal.whatsapp.gateways.evolution import EvolutionGateway
from portal.whatsapp.gateways.waha import WahaGateway
from portal.whatsapp.link import GatewayAuthError, GatewayConflict, GatewayError, InvalidWebhook

API_KEY = "SECRET-API-KEY-123"
Handler = Callable[[httpx.Request], httpx.Response]


def waha(handler: Handler) -> WahaGateway:
    return WahaGateway("http://waha.test/", API_KEY, transport=httpx.MockTransport(handler))


def evolution(handler: Handler) -> EvolutionGateway:
    return EvolutionGateway("http://evo.test/", API_KEY, transport=httpx.MockTransport(handler))


# (build, the API-key header, the logger and `gateway` of its failure log line)
ADAPTERS = [
    pytest.param(waha, "x-api-key", "portal.whatsapp.gateways.waha", "waha", id="waha"),
    pytest.param(evolution, "apikey", "portal.whatsapp.gateways.evolution", "evolution", id="evolution"),
]


@pytest.mark.parametrize(("build", "key_header", "logger", "gateway"), ADAPTERS)
async def test_every_call_carries_the_key_and_asks_for_json(build, key_header, logger, gateway):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    gw = build(handler)
    try:
        assert await gw.list_states() == {}
    finally:
        await gw.aclose()
    assert seen and seen[0].headers[key_header] == API_KEY
    assert seen[0].headers["accept"] == "application/json"
    assert API_KEY not in repr(gw) and "test" in repr(gw)


@pytest.mark.parametrize(("build", "key_header", "logger", "gateway"), ADAPTERS)
async def test_a_redirect_is_not_followed_and_is_a_logged_failure(build, key_header, logger, gateway, caplog):
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://elsewhere.test/steal"})

    gw = build(handler)
    caplog.set_level(logging.DEBUG, logger=logger)
    try:
        with pytest.raises(GatewayError) as caught:
            await gw.list_states()
    finally:
        await gw.aclose()
    assert type(caught.value) is GatewayError and caught.value.status_code == 302
    assert len(calls) == 1 and "elsewhere" not in calls[0]
    [record] = [r for r in caplog.records if r.name == logger]
    assert record.getMessage() == "whatsapp gateway call failed"
    assert (record.gateway, record.error_class) == (gateway, "GatewayError")
    assert record.summary.endswith("HTTP 302")


@pytest.mark.parametrize(("build", "key_header", "logger", "gateway"), ADAPTERS)
async def test_a_rejected_key_is_logged_without_the_key(build, key_header, logger, gateway, caplog):
    gw = build(lambda request: httpx.Response(401, json={"key": API_KEY}))
    caplog.set_level(logging.DEBUG, logger=logger)
    try:
        with pytest.raises(GatewayAuthError):
            await gw.list_states()
    finally:
        await gw.aclose()
    [record] = [r for r in caplog.records if r.name == logger]
    assert record.error_class == "GatewayAuthError"
    assert API_KEY not in str(record.__dict__)


@pytest.mark.parametrize(
    ("build", "code", "body", "summary", "logger"),
    [
        pytest.param(waha, 422, {"status": "WORKING"}, "restart session: session is WORKING (HTTP 422)",
                     "portal.whatsapp.gateways.waha", id="waha-422"),
        pytest.param(waha, 422, {"status": "<b>x</b>"},
                     "restart session: not possible in the session's state (HTTP 422)",
                     "portal.whatsapp.gateways.waha", id="waha-422-odd-status"),
        pytest.param(evolution, 400, {}, "restart instance: not possible now (HTTP 400)",
                     "portal.whatsapp.gateways.evolution", id="evolution-400"),
        pytest.param(evolution, 403, {}, "restart instance: not possible now (HTTP 403)",
                     "portal.whatsapp.gateways.evolution", id="evolution-403"),
        pytest.param(evolution, 200, {"error": True, "message": "secret-ish"},
                     "restart instance: Evolution answered an error",
                     "portal.whatsapp.gateways.evolution", id="evolution-200-error"),
    ],
)
async def test_each_gateways_own_refusals_are_unlogged_conflicts(build, code, body, summary, logger, caplog):
    gw = build(lambda request: httpx.Response(code, json=body))
    caplog.set_level(logging.DEBUG, logger=logger)
    try:
        with pytest.raises(GatewayConflict) as caught:
            await gw.restart("salon-1")
    finally:
        await gw.aclose()
    assert (caught.value.safe_summary, caught.value.status_code) == (summary, code)
    assert [r for r in caplog.records if r.name == logger] == []


# A code that is a refusal for one gateway is a plain failure for the other.
@pytest.mark.parametrize(("build", "code"), [(waha, 400), (waha, 403), (evolution, 422), (evolution, 409)])
async def test_another_4xx_is_a_plain_gateway_error(build, code):
    gw = build(lambda request: httpx.Response(code))
    try:
        with pytest.raises(GatewayError) as caught:
            await gw.restart("salon-1")
    finally:
        await gw.aclose()
    assert type(caught.value) is GatewayError


@pytest.mark.parametrize(("build", "unit"), [(waha, "session"), (evolution, "instance")])
async def test_an_empty_name_is_refused_in_the_gateways_words(build, unit):
    gw = build(lambda request: httpx.Response(200))
    try:
        with pytest.raises(ValueError, match=f"^{unit} name must not be empty$"):
            await gw.restart("")
    finally:
        await gw.aclose()


def test_a_signed_waha_webhook_still_needs_the_token_when_both_are_set():
    gw = WahaGateway("http://waha.test", API_KEY, webhook_url="http://portal.test/hook",
                     webhook_hmac_key="hmac-key", webhook_token="tok")
    # No signature: the signature check speaks first, as it always did.
    with pytest.raises(InvalidWebhook, match="signature missing"):
        gw.parse_webhook(b"{}", {"X-Webhook-Token": "tok"})

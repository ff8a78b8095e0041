"""The WAHA adapter against a fake WAHA served over real HTTP on 127.0.0.1."""

import hashlib
import hmac
import json
import time

import httpx
import pytest

from portal.whatsapp.gateways.waha import WahaGateway
from portal.whatsapp.link import (
    GatewayAuthError,
    GatewayConflict,
    GatewayUnavailable,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
    StatusUpdate,
)
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.servers import free_port, serve

API_KEY = "waha-test-key-7f3a"
HOOK_KEY = "hook-test-key-91c2"
HOOK_URL = "http://portal.test/webhooks/waha"
SALON = "salon-12345"
PHONE = "79161234567"


@pytest.fixture
def waha():
    app, state = create_fake_waha(API_KEY)
    with serve(app) as base_url:
        try:
            yield base_url, state
        finally:
            state.hang_s = 0  # let any request still hanging finish, so shutdown is quick


@pytest.fixture
async def gateway(waha):
    base_url, _ = waha
    gw = WahaGateway(base_url, API_KEY, webhook_url=HOOK_URL, webhook_hmac_key=HOOK_KEY, timeout_s=2)
    yield gw
    await gw.aclose()


@pytest.fixture
def state(waha):
    return waha[1]


# --- sessions -------------------------------------------------------------------------


async def test_start_session_creates_it_started_with_signed_status_webhook(gateway, state):
    result = await gateway.start_session(SALON, metadata={"yclients_salon_id": 12345})

    assert result == LinkState(LinkStatus.STARTING)
    method, path, body = state.requests[0]
    assert (method, path) == ("POST", "/api/sessions")
    assert body == {
        "name": SALON,
        "start": True,
        "config": {
            "metadata": {"yclients_salon_id": "12345"},
            # WAHA delivers again on failure by this policy (waha-docs how-to/events#retries)
            "webhooks": [{"url": HOOK_URL, "events": ["session.status"], "hmac": {"key": HOOK_KEY},
                          "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 6}}],
        },
    }


async def test_start_session_without_webhook_url_configures_no_webhook(waha):
    base_url, state = waha
    gw = WahaGateway(base_url, API_KEY, timeout_s=2)
    try:
        await gw.start_session(SALON, metadata={})
    finally:
        await gw.aclose()
    assert "webhooks" not in state.requests[0][2]["config"]


async def test_start_session_reuses_a_stopped_session_and_starts_it(gateway, state):
    state.add_session(SALON, "STOPPED")

    result = await gateway.start_session(SALON, metadata={})

    assert result.status is LinkStatus.STARTING
    assert "POST /api/sessions/salon-12345/start" in state.paths()
    assert list(state.sessions) == [SALON]


async def test_start_session_gives_a_failed_session_a_new_cycle(gateway, state):
    state.add_session(SALON, "FAILED")

    result = await gateway.start_session(SALON, metadata={})

    assert result.status is LinkStatus.STARTING
    assert "POST /api/sessions/salon-12345/restart" in state.paths()


async def test_start_session_is_idempotent_while_awaiting_scan(gateway, state):
    state.add_session(SALON, "SCAN_QR_CODE")

    result = await gateway.start_session(SALON, metadata={})

    assert result == LinkState(LinkStatus.AWAITING_SCAN, qr=state.sessions[SALON].qr)
    assert not [p for p in state.paths() if p.endswith(("/start", "/restart"))]


async def test_start_session_422_for_a_name_that_does_not_exist_stays_a_conflict():
    # WAHA rejected the body itself (422) and there is no session by that name to reuse.
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(422, json={"message": ["config.webhooks.0.url must be a URL"]})
        return httpx.Response(404, json={"error": "Session not found"})

    gw = WahaGateway("http://waha.test", API_KEY, transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(GatewayConflict) as caught:
            await gw.start_session(SALON, metadata={})
    finally:
        await gw.aclose()
    assert caught.value.safe_summary.startswith("create session")


async def test_an_empty_session_name_is_refused_before_calling_waha(gateway, state):
    with pytest.raises(ValueError):
        await gateway.get_state("")
    assert state.requests == []


@pytest.mark.parametrize(
    ("waha_status", "me_phone", "expected"),
    [
        ("STOPPED", None, LinkState(LinkStatus.IDLE)),
        ("STARTING", None, LinkState(LinkStatus.STARTING)),
        ("STARTING", PHONE, LinkState(LinkStatus.LINKING, phone=PHONE)),  # just scanned
        ("WORKING", PHONE, LinkState(LinkStatus.CONNECTED, phone=PHONE)),
        ("FAILED", None, LinkState(LinkStatus.EXPIRED)),  # QR cycle ran out
        ("FAILED", PHONE, LinkState(LinkStatus.FAILED)),
        ("SOMETHING_NEW", None, LinkState(LinkStatus.FAILED)),
    ],
)
async def test_get_state_maps_waha_statuses(gateway, state, waha_status, me_phone, expected):
    state.add_session(SALON, waha_status)
    state.set_me(SALON, me_phone)

    assert await gateway.get_state(SALON) == expected


async def test_get_state_includes_the_raw_qr_while_awaiting_scan(gateway, state):
    state.add_session(SALON, "SCAN_QR_CODE")

    result = await gateway.get_state(SALON)

    assert result.status is LinkStatus.AWAITING_SCAN
    assert result.qr == state.sessions[SALON].qr
    assert "GET /api/salon-12345/auth/qr" in state.paths()  # the fake insists on format=raw


async def test_get_state_of_a_missing_session_is_idle(gateway):
    assert await gateway.get_state("salon-404") == LinkState(LinkStatus.IDLE)


async def test_get_state_reports_the_new_state_when_the_qr_vanished_meanwhile():
    # Scanned between "GET session" and "GET qr": WAHA answers the QR call with 422.
    statuses = iter(["SCAN_QR_CODE", "STARTING"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/qr"):
            return httpx.Response(422, json={"error": "no", "status": "STARTING", "expected": ["SCAN_QR_CODE"]})
        return httpx.Response(200, json={"name": SALON, "status": next(statuses), "me": {"id": f"{PHONE}@c.us"}})

    gw = WahaGateway("http://waha.test", API_KEY, transport=httpx.MockTransport(handler))
    try:
        assert await gw.get_state(SALON) == LinkState(LinkStatus.LINKING, phone=PHONE)
    finally:
        await gw.aclose()


async def test_pairing_code_is_requested_for_the_phone_digits(gateway, state):
    state.add_session(SALON, "SCAN_QR_CODE")

    code = await gateway.request_pairing_code(SALON, PHONE)

    assert code == "ABCD-EFGH"
    assert state.pairing_requests == [(SALON, PHONE)]


async def test_pairing_code_outside_scan_state_is_a_conflict_naming_the_state(gateway, state):
    state.add_session(SALON, "STARTING")

    with pytest.raises(GatewayConflict) as caught:
        await gateway.request_pairing_code(SALON, PHONE)

    assert "STARTING" in caught.value.safe_summary
    assert caught.value.status_code == 422


async def test_pairing_code_rejects_a_formatted_phone_before_calling_waha(gateway, state):
    state.add_session(SALON, "SCAN_QR_CODE")

    with pytest.raises(ValueError):
        await gateway.request_pairing_code(SALON, "+7 916 123-45-67")

    assert state.requests == []


async def test_restart_and_logout_of_a_missing_session_raise_not_found(gateway):
    with pytest.raises(SessionNotFound):
        await gateway.restart("salon-404")
    with pytest.raises(SessionNotFound):
        await gateway.logout("salon-404")


async def test_logout_drops_the_account(gateway, state):
    state.add_session(SALON, "WORKING")
    state.set_me(SALON, PHONE)

    await gateway.logout(SALON)

    assert state.sessions[SALON].me is None
    assert (await gateway.get_state(SALON)).status is LinkStatus.IDLE


async def test_delete_removes_the_session_and_tolerates_a_missing_one(gateway, state):
    state.add_session(SALON, "WORKING")

    await gateway.delete(SALON)
    await gateway.delete(SALON)  # second time: already gone, still fine

    assert SALON not in state.sessions
    assert state.paths().count("DELETE /api/sessions/salon-12345") == 2


# --- failures -------------------------------------------------------------------------


async def test_a_wrong_api_key_is_an_auth_error_that_does_not_echo_the_key(waha):
    base_url, _ = waha
    wrong_key = "not-the-key-5e1d"
    gw = WahaGateway(base_url, wrong_key, timeout_s=2)
    try:
        with pytest.raises(GatewayAuthError) as caught:
            await gw.get_state(SALON)
    finally:
        await gw.aclose()
    assert caught.value.status_code == 401
    assert wrong_key not in caught.value.safe_summary
    assert wrong_key not in repr(gw)


async def test_a_hanging_gateway_times_out_as_unavailable(waha):
    base_url, state = waha
    state.hang_s = 5
    gw = WahaGateway(base_url, API_KEY, timeout_s=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(GatewayUnavailable) as caught:
            await gw.get_state(SALON)
    finally:
        await gw.aclose()
    assert time.monotonic() - started < 2
    assert "timed out" in caught.value.safe_summary


async def test_a_500_is_unavailable_and_its_body_stays_out_of_the_error(gateway, state):
    state.fail_with = 500

    with pytest.raises(GatewayUnavailable) as caught:
        await gateway.start_session(SALON, metadata={})

    assert caught.value.status_code == 500
    assert "500" in caught.value.safe_summary
    assert "stack trace" not in str(caught.value)


async def test_connection_refused_is_unavailable():
    gw = WahaGateway(f"http://127.0.0.1:{free_port()}", API_KEY, timeout_s=2)
    try:
        with pytest.raises(GatewayUnavailable):
            await gw.get_state(SALON)
    finally:
        await gw.aclose()


# --- webhooks -------------------------------------------------------------------------


def status_event(status="WORKING", me_phone=PHONE, session=SALON) -> bytes:
    me = {"id": f"{me_phone}@c.us", "pushName": "Salon"} if me_phone else None
    event = {"event": "session.status", "session": session, "me": me, "payload": {"status": status},
             "metadata": {"yclients_salon_id": "12345"}}
    return json.dumps(event).encode()


def signed(body: bytes, key: str = HOOK_KEY) -> dict[str, str]:
    digest = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
    return {"X-Webhook-Hmac": digest, "X-Webhook-Hmac-Algorithm": "sha512", "Content-Type": "application/json"}


@pytest.fixture
async def hook_gateway():
    gw = WahaGateway("http://waha.test", API_KEY, webhook_url=HOOK_URL, webhook_hmac_key=HOOK_KEY)
    yield gw
    await gw.aclose()


async def test_a_correctly_signed_status_webhook_is_read(hook_gateway):
    body = status_event("WORKING")

    assert hook_gateway.parse_webhook(body, signed(body)) == StatusUpdate(SALON, LinkStatus.CONNECTED, PHONE)


async def test_webhook_header_names_are_case_insensitive(hook_gateway):
    body = status_event("FAILED", me_phone=None)
    headers = {k.lower(): v for k, v in signed(body).items()}  # as Starlette hands them over

    assert hook_gateway.parse_webhook(body, headers) == StatusUpdate(SALON, LinkStatus.EXPIRED, None)


async def test_a_webhook_signed_with_another_key_is_invalid(hook_gateway):
    body = status_event()

    with pytest.raises(InvalidWebhook):
        hook_gateway.parse_webhook(body, signed(body, key="someone-else"))


async def test_a_webhook_changed_after_signing_is_invalid(hook_gateway):
    headers = signed(status_event("SCAN_QR_CODE"))

    with pytest.raises(InvalidWebhook):
        hook_gateway.parse_webhook(status_event("WORKING"), headers)


async def test_an_unsigned_webhook_is_invalid(hook_gateway):
    with pytest.raises(InvalidWebhook):
        hook_gateway.parse_webhook(status_event(), {"Content-Type": "application/json"})


async def test_a_webhook_claiming_another_algorithm_is_invalid(hook_gateway):
    body = status_event()
    headers = signed(body) | {"X-Webhook-Hmac-Algorithm": "sha256"}

    with pytest.raises(InvalidWebhook):
        hook_gateway.parse_webhook(body, headers)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({"event": "message", "session": SALON, "payload": {"body": "hi"}}).encode(),
        json.dumps({"event": "session.status", "session": SALON, "payload": {}}).encode(),
        json.dumps({"event": "session.status", "payload": {"status": "WORKING"}}).encode(),
    ],
)
async def test_a_signed_but_unreadable_webhook_is_malformed(hook_gateway, body):
    with pytest.raises(MalformedWebhook):
        hook_gateway.parse_webhook(body, signed(body))


async def test_without_any_webhook_authentication_webhooks_are_refused():
    gw = WahaGateway("http://waha.test", API_KEY, webhook_url=HOOK_URL)
    try:
        with pytest.raises(InvalidWebhook):
            gw.parse_webhook(status_event("STARTING"), {})
    finally:
        await gw.aclose()


async def test_demo_mode_may_read_unauthenticated_webhooks():
    gw = WahaGateway("http://waha.test", API_KEY, webhook_url=HOOK_URL, accept_unauthenticated_webhooks=True)
    try:
        update = gw.parse_webhook(status_event("STARTING"), {})
    finally:
        await gw.aclose()
    assert update == StatusUpdate(SALON, LinkStatus.LINKING, PHONE)


async def test_with_webhooks_off_every_webhook_is_refused():
    gw = WahaGateway("http://waha.test", API_KEY, webhook_url=None, accept_unauthenticated_webhooks=True)
    try:
        with pytest.raises(InvalidWebhook):
            gw.parse_webhook(status_event("WORKING"), {})
    finally:
        await gw.aclose()


TOKEN = "core-webhook-token-0123456789"


async def test_waha_core_webhooks_authenticate_with_the_custom_header_token(waha):
    """WAHA Core does not sign; it sends the configured customHeaders with every delivery."""
    base_url, state = waha
    gw = WahaGateway(base_url, API_KEY, webhook_url=HOOK_URL, webhook_token=TOKEN, timeout_s=2)
    try:
        await gw.start_session(SALON, metadata={})
        hook = state.sessions[SALON].config["webhooks"][0]
        assert hook["customHeaders"] == [{"name": "X-Webhook-Token", "value": TOKEN}] and "hmac" not in hook
        body = status_event("WORKING")
        assert gw.parse_webhook(body, {"x-webhook-token": TOKEN}).status is LinkStatus.CONNECTED
        for wrong in ({}, {"x-webhook-token": TOKEN[:-1]}, {"x-webhook-token": TOKEN + "x"}):
            with pytest.raises(InvalidWebhook):
                gw.parse_webhook(body, wrong)
    finally:
        await gw.aclose()


# --- sending a message -------------------------------------------------------------------


async def test_send_text_posts_the_documented_body_from_a_working_session(gateway, state):
    state.add_session(SALON, "WORKING")
    state.set_me(SALON, PHONE)

    await gateway.send_text(SALON, PHONE, "Код: 123456")

    assert state.sent_texts == [(SALON, f"{PHONE}@c.us", "Код: 123456")]
    assert state.requests[-1] == ("POST", "/api/sendText",
                                  {"session": SALON, "chatId": f"{PHONE}@c.us", "text": "Код: 123456"})


async def test_send_text_from_a_session_not_working_is_a_conflict_naming_the_state(gateway, state):
    state.add_session(SALON, "SCAN_QR_CODE")

    with pytest.raises(GatewayConflict) as caught:
        await gateway.send_text(SALON, PHONE, "hello")

    assert "SCAN_QR_CODE" in caught.value.safe_summary and state.sent_texts == []


async def test_send_text_from_a_missing_session_is_session_not_found(gateway, state):
    with pytest.raises(SessionNotFound):
        await gateway.send_text(SALON, PHONE, "hello")


async def test_send_text_refuses_a_formatted_phone_before_calling_waha(gateway, state):
    with pytest.raises(ValueError):
        await gateway.send_text(SALON, "+7 916 123-45-67", "hello")
    assert state.requests == []


async def test_every_session_is_listed_in_one_call_stopped_ones_too(gateway, state):
    state.add_session("salon-1", "SCAN_QR_CODE")
    state.add_session("salon-2", "WORKING")
    state.set_me("salon-2", PHONE)
    state.add_session("salon-3", "STOPPED")
    state.requests.clear()
    assert await gateway.list_states() == {
        "salon-1": LinkState(LinkStatus.AWAITING_SCAN), "salon-2": LinkState(LinkStatus.CONNECTED, phone=PHONE),
        "salon-3": LinkState(LinkStatus.IDLE)}
    assert state.requests == [("GET", "/api/sessions", None)]  # ?all=true: the stopped one is there

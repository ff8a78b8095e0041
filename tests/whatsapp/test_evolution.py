"""The Evolution API adapter against a fake Evolution built from its source, over real HTTP.

What every gateway must do is in the conformance suite (tests/whatsapp/test_conformance.py);
here: what is Evolution's own (its create body, its 200-with-error answers, its pairing code
that needs a connection begun with the number, its unsigned webhooks and their envelope).
"""

from __future__ import annotations

import json
import logging

import pytest

from portal.whatsapp.gateways.evolution import EvolutionGateway
from portal.whatsapp.link import (
    GatewayConflict,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
)
from tests.helpers.clock import FakeClock
from tests.helpers.gateways.fake_evolution import create_fake_evolution
from tests.helpers.servers import serve

KEY = "evolution-global-key"
TOKEN = "evolution-webhook-token-0123456789"
HOOK = "http://portal.test/webhook/whatsapp"


@pytest.fixture
def fake():
    app, state = create_fake_evolution(KEY, clock=FakeClock())
    with serve(app) as url:
        yield url, state


@pytest.fixture
async def gateway(fake):
    gw = EvolutionGateway(fake[0], KEY, webhook_url=HOOK, webhook_token=TOKEN, timeout_s=3)
    yield gw
    await gw.aclose()


async def test_create_asks_for_a_baileys_instance_with_a_qr_and_our_webhook_header(gateway, fake):
    _, state = fake
    started = await gateway.start_session("salon-1", metadata={"yclients_salon_id": "1"})
    assert started.status is LinkStatus.AWAITING_SCAN and started.qr == state.instances["salon-1"].qr_code
    [(_, path, body)] = state.requests
    assert path == "/instance/create"
    assert body == {"instanceName": "salon-1", "integration": "WHATSAPP-BAILEYS", "qrcode": True,
                    "webhook": {"enabled": True, "url": HOOK, "headers": {"X-Webhook-Token": TOKEN},
                                "byEvents": False, "base64": False,
                                "events": ["QRCODE_UPDATED", "CONNECTION_UPDATE"]}}
    # Idempotent: the name is taken (403) and the instance is on its way: nothing restarts it.
    again = await gateway.start_session("salon-1", metadata={})
    assert again.qr == started.qr and state.instances["salon-1"].connections == 1


async def test_an_http_200_with_error_true_is_an_error(gateway, fake):
    _, state = fake
    await gateway.start_session("salon-2", metadata={})
    await gateway.logout("salon-2")
    assert state.instances["salon-2"].state == "close"
    with pytest.raises(GatewayConflict):  # restart of a closed instance: 200 {"error": true}
        await gateway.restart("salon-2")
    await gateway.logout("salon-2")  # closed already (400): what the caller wanted
    with pytest.raises(SessionNotFound):
        await gateway.restart("salon-404")


async def test_pairing_code_begins_the_connection_again_with_the_number(gateway, fake):
    _, state = fake
    await gateway.start_session("salon-3", metadata={})
    code = await gateway.request_pairing_code("salon-3", "79160000003")
    assert code == state.instances["salon-3"].pairing_code and len(code) == 8
    assert state.paths()[-3:] == ["GET /instance/connect/salon-3", "DELETE /instance/logout/salon-3",
                                  "GET /instance/connect/salon-3"]
    assert state.requests[-1][1] == "/instance/connect/salon-3"


async def test_connected_reads_the_number_once_then_one_call_per_look(gateway, fake):
    _, state = fake
    await gateway.start_session("salon-4", metadata={})
    state.scan("salon-4", "79160000004")
    assert await gateway.get_state("salon-4") == LinkState(LinkStatus.CONNECTED, phone="79160000004")
    state.requests.clear()
    assert await gateway.refresh("salon-4", known=LinkStatus.CONNECTED, want_qr=False) == LinkState(
        LinkStatus.CONNECTED)
    assert state.paths() == ["GET /instance/connectionState/salon-4"]
    await gateway.send_text("salon-4", "79160000099", "Hello")
    assert state.instances["salon-4"].sent == [{"number": "79160000099", "text": "Hello"}]


def test_webhooks_need_the_token_and_never_log_the_envelopes_apikey(caplog):
    gw = EvolutionGateway("http://evolution.test", KEY, webhook_url=HOOK, webhook_token=TOKEN)
    envelope = {"event": "connection.update", "instance": "salon-5", "destination": HOOK,
                "data": {"instance": "salon-5", "state": "open", "statusReason": 200,
                         "wuid": "79160000005@s.whatsapp.net"},
                "date_time": "2026-12-04T18:00:00.000Z", "sender": None, "server_url": "http://e",
                "apikey": "INSTANCE-TOKEN-SECRET"}
    body = json.dumps(envelope).encode()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidWebhook):
        gw.parse_webhook(body, {})
    with pytest.raises(InvalidWebhook):
        gw.parse_webhook(body, {"X-Webhook-Token": TOKEN[:-1] + "x"})
    update = gw.parse_webhook(body, {"x-webhook-token": TOKEN})
    assert (update.session, update.status, update.phone) == ("salon-5", LinkStatus.CONNECTED, "79160000005")
    assert update.event_id and update.event_id == gw.parse_webhook(body, {"X-Webhook-Token": TOKEN}).event_id
    refused = json.dumps(envelope | {"data": {"state": "refused", "statusReason": 428}}).encode()
    assert gw.parse_webhook(refused, {"X-Webhook-Token": TOKEN}).status is LinkStatus.EXPIRED
    with pytest.raises(MalformedWebhook):
        gw.parse_webhook(json.dumps(envelope | {"event": "messages.upsert"}).encode(), {"X-Webhook-Token": TOKEN})
    assert "INSTANCE-TOKEN-SECRET" not in caplog.text
    no_token = EvolutionGateway("http://evolution.test", KEY, webhook_url=HOOK)
    with pytest.raises(InvalidWebhook):  # production never runs so (settings refuse it)
        no_token.parse_webhook(body, {})


async def test_every_instance_is_listed_in_one_call(gateway, fake):
    _, state = fake
    await gateway.start_session("salon-5", metadata={})
    await gateway.start_session("salon-6", metadata={})
    state.scan("salon-6", "79160000006")
    state.requests.clear()
    assert await gateway.list_states() == {
        "salon-5": LinkState(LinkStatus.AWAITING_SCAN),
        "salon-6": LinkState(LinkStatus.CONNECTED, phone="79160000006")}
    assert state.paths() == ["GET /instance/fetchInstances"]

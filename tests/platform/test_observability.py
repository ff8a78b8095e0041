"""Metrics and pool health, as an operator reads them."""

import asyncio

import httpx
from starlette.testclient import TestClient

from portal.app import create_app
from tests.activation.test_activation import connect_whatsapp
from tests.activation.test_activation_concurrency import portals, token_for
from tests.helpers.landing import land_for_token
from tests.helpers.partner import owner_installs, partner_server

AUTH = {"Authorization": "Bearer health-token-for-tests"}


def test_metrics_need_the_health_token_and_show_what_happened(make_settings, db):
    settings = make_settings(QR_BREAKER_FAILURE_THRESHOLD="1", OWNER_RATE_LIMIT="1/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        c.post("/sandbox/whatsapp/fault", data={"mode": "down"})
        token = land_for_token(c, settings.partner_token, salon_id=500001)
        c.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token}"})  # fails, opens the breaker
        c.post("/marketplace/api/qr", headers={"Authorization": f"Bearer {token}"})  # rate limited
        c.post("/marketplace/activate", json={"token": land_for_token(c, settings.partner_token, salon_id=500002)})
        c.post("/webhook/yclients", json={"salon_id": 1, "application_id": 1, "event": "x", "partner_token": "bad"})
        r = c.get("/metrics", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'portal_breaker_state{breaker="qrGeneration"} 2.0',
        'portal_breaker_transitions_total{breaker="qrGeneration",from_state="closed",to_state="open"} 1.0',
        'portal_gateway_errors_total{kind="GatewayUnavailable"} 1.0',
        'portal_rate_limit_rejections_total{scope="owner"} 1.0',
        'portal_activations_total{outcome="WHATSAPP_NOT_CONNECTED"} 1.0',
        'portal_webhook_deliveries_total{outcome="refused",source="yclients"} 1.0',
    ):
        assert line in text, line
    assert "portal_activation_duration_seconds_count 1.0" in text
    assert "portal_db_pool_in_use" in text and "portal_db_pool_waiting" in text


async def test_health_warns_when_the_pool_has_waiters(make_settings, db):
    with partner_server(delay_s=1.5) as (purl, market), \
            portals(make_settings, purl, DATABASE_POOL_SIZE="2", ACTIVATION_CONCURRENCY="4") as (urls, _):
        owner_installs(market, 7001, 7002, 7003)
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{urls[0]}/marketplace/health", headers=AUTH)).json()["status"] == "ok"
            tokens = [await token_for(http, urls[0], sid) for sid in (7001, 7002, 7003)]
            for sid in (7001, 7002, 7003):
                connect_whatsapp(db, sid)
            activations = [asyncio.create_task(http.post(f"{urls[0]}/marketplace/activate", json={"token": t}))
                           for t in tokens]
            await asyncio.sleep(0.5)  # two hold the pool's connections; the third waits for one
            health = (await http.get(f"{urls[0]}/marketplace/health", headers=AUTH)).json()
            assert health["status"] == "degraded"
            assert "database pool had waiters" in health["warnings"]
            assert health["services"]["database_pool"]["waiting"] >= 1
            assert all(r.status_code == 200 for r in await asyncio.gather(*activations))

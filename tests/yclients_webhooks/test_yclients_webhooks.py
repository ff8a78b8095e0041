"""YClients webhooks: authenticated, stored before the answer, processed exactly once,
told apart across reinstalls, retried until done, purged after their TTL."""

import asyncio
import json
import logging
import time

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from portal.app import create_app
from portal.yclients_webhooks.deliveries import Delivery, store
from tests.activation.test_activation import connect_whatsapp
from tests.helpers.database import run
from tests.helpers.landing import land, land_for_token, landing_query
from tests.helpers.partner import APP_ID, PARTNER_TOKEN, partner_server
from tests.helpers.servers import free_port, serve
from tests.helpers.staff import sign_in, staff_env

FAST = {"WEBHOOK_WORKER_INTERVAL_S": "0.1"}


def body(salon_id=500001, event="uninstall", token=None, app_id=None, settings=None):
    return {"salon_id": salon_id, "application_id": app_id if app_id is not None else settings.app_id,
            "event": event, "partner_token": token if token is not None else settings.partner_token}


def wait_for(predicate, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def app_client(make_settings):
    settings = make_settings(**FAST)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c, settings


def test_wrong_token_or_application_is_403_and_stores_nothing(app_client, db, caplog):
    client, settings = app_client
    for bad in (body(token="nope", settings=settings), body(app_id=settings.app_id + 1, settings=settings)):
        r = client.post("/webhook/yclients", json=bad)
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert db.count("webhook_deliveries") == 0
    assert settings.partner_token not in caplog.text and "nope" not in caplog.text


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                 max_leaves=8).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"salon_id": st.one_of(st.text(), st.booleans(), st.floats(), st.integers(max_value=0)),
                           "application_id": st.integers(), "event": st.text(min_size=1, max_size=10),
                           "partner_token": st.text(min_size=1)}).map(lambda v: json.dumps(v).encode()),
))
def test_malformed_bodies_are_400_and_store_nothing(app_client, db, raw):
    client, _ = app_client
    r = client.post("/webhook/yclients", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 403), (raw, r.text)  # 403 only for well-formed bodies with a wrong token
    assert db.count("webhook_deliveries") == 0


@pytest.mark.parametrize("raw, reason", [
    (b"", "not JSON"), (b"[]", "object"), (b'{"salon_id": "1"}', "partner_token"),
    (b'{"salon_id": 1, "application_id": 1, "event": "uninstall"}', "partner_token"),
    (b'{"salon_id": true, "application_id": 1, "event": "uninstall", "partner_token": "x"}', "salon_id"),
    (b"{" + b'"pad": "' + b"x" * 5000 + b'"}', "too large"),
])
def test_malformed_bodies_say_why(app_client, db, raw, reason):
    client, _ = app_client
    r = client.post("/webhook/yclients", content=raw)
    assert r.status_code == 400 and reason in r.json()["error"]
    assert db.count("webhook_deliveries") == 0


def test_unknown_event_is_stored_and_ignored(app_client, db):
    client, settings = app_client
    land(client, settings.partner_token, salon_id=500001)
    r = client.post("/webhook/yclients", json=body(event="renewal_reminder", settings=settings))
    assert r.status_code == 200 and r.json()["ignored"] is True
    assert db.fetchval("SELECT status FROM webhook_deliveries") == "ignored"
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"


def test_uninstall_then_a_duplicate_changes_nothing(app_client, db):
    client, settings = app_client
    land(client, settings.partner_token, salon_id=500001)
    client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
    first = client.post("/webhook/yclients", json=body(settings=settings))
    assert first.status_code == 200 and first.json()["processed"] is True
    row = db.fetchrow("SELECT integration_status, api_key_hash, gateway_cleanup_pending_since FROM salons")
    assert row["integration_status"] == "uninstalled" and row["api_key_hash"] is None
    assert row["gateway_cleanup_pending_since"] is None  # the simulator deleted the session at once
    assert db.fetchval("SELECT status FROM whatsapp_links") == "idle"
    again = client.post("/webhook/yclients", json=body(settings=settings))
    assert again.status_code == 200 and again.json() == {"success": True, "duplicate": True}
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'uninstalled'") == 1
    assert db.count("webhook_deliveries") == 1


def test_freeze_keeps_whatsapp(app_client, db):
    client, settings = app_client
    land(client, settings.partner_token, salon_id=500002)
    connect_whatsapp(db, 500002)
    client.post("/webhook/yclients", json=body(salon_id=500002, event="freeze", settings=settings))
    assert db.fetchval("SELECT integration_status FROM salons") == "frozen"
    assert db.fetchval("SELECT status FROM whatsapp_links") == "connected"


async def test_twenty_concurrent_identical_deliveries_are_processed_once(make_settings, db):
    port = free_port()
    settings = make_settings(PORTAL_BASE_URL=f"http://127.0.0.1:{port}", **FAST)
    with serve(create_app(settings), port=port) as url:
        async with httpx.AsyncClient(timeout=30) as http:
            await http.get(f"{url}/sandbox/install/500001")  # the owner presses Install in the sandbox
            landed = await http.get(f"{url}/auth/yclients/redirect?{landing_query(settings.partner_token, 500001)}",
                                    headers={"Accept": "application/json"})
            assert landed.status_code == 200
            responses = await asyncio.gather(*(http.post(f"{url}/webhook/yclients", json=body(settings=settings))
                                               for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert sum(1 for r in responses if not r.json().get("duplicate")) == 1
    assert db.count("webhook_deliveries") == 1
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'uninstalled'") == 1


def test_uninstall_reinstall_uninstall_is_processed_twice(make_settings, db):
    with partner_server() as (purl, market):
        settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=purl,
                                 YCLIENTS_APP_ID=str(APP_ID), **FAST)
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            for round_ in (1, 2):
                # Each round a new marketplace link: the first one dies with the uninstall.
                market.grant(6001)  # Install (again)
                token = land_for_token(client, settings.partner_token, salon_id=6001,
                                       user={"id": round_, "salon_id": 6001})
                connect_whatsapp(db, 6001)
                assert client.post("/marketplace/activate", json={"token": token}).status_code == 200
                market.uninstall(6001)
                r = client.post("/webhook/yclients", json=body(salon_id=6001, settings=settings))
                assert r.status_code == 200 and not r.json().get("duplicate"), round_
                assert db.fetchval("SELECT integration_status FROM salons") == "uninstalled"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'uninstalled'") == 2
    assert db.fetchval("SELECT install_generation FROM salons") == 2


def test_a_processing_failure_is_retried_until_done(app_client, db):
    client, settings = app_client
    land(client, settings.partner_token, salon_id=500001)
    # Real PostgreSQL refuses the first processing; a sequence survives the rollback.
    db.execute("""CREATE SEQUENCE uninstall_tries;
                  CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN IF NEW.integration_status = 'uninstalled' AND nextval('uninstall_tries') = 1 THEN
                      RAISE EXCEPTION 'disk full (simulated)'; END IF; RETURN NEW; END $$;
                  CREATE TRIGGER refuse_once BEFORE UPDATE ON salons FOR EACH ROW EXECUTE FUNCTION refuse_once();""")
    db.execute("UPDATE salons SET updated_at = now()")  # not an uninstall: does not count
    r = client.post("/webhook/yclients", json=body(settings=settings))
    assert r.status_code == 200 and r.json()["processed"] is False  # stored, answered, not yet done
    pending = db.fetchrow("SELECT status, attempts, last_error FROM webhook_deliveries")
    assert pending["status"] == "pending" and pending["attempts"] == 1 and "disk full" in pending["last_error"]
    db.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")  # skip the backoff wait
    assert wait_for(lambda: db.fetchval("SELECT status FROM webhook_deliveries") == "done")
    assert db.fetchval("SELECT integration_status FROM salons") == "uninstalled"


def test_a_programming_error_fails_the_delivery_after_bounded_attempts_with_one_traceback(
        app_client, db, monkeypatch, caplog):
    from portal.salons import event_store
    from portal.yclients_webhooks import worker
    from portal.yclients_webhooks.store import MAX_DELIVERY_ATTEMPTS

    client, settings = app_client
    land(client, settings.partner_token, salon_id=500001)

    async def broken_record(*args, **kwargs):
        raise TypeError("record() got an unexpected keyword argument 'salon'")  # a bug, not bad luck

    monkeypatch.setattr(event_store, "record", broken_record)
    monkeypatch.setattr(worker, "retry_delay_s", lambda attempts: 0.0)  # the worker retries at once
    caplog.set_level(logging.WARNING, logger=worker.__name__)
    r = client.post("/webhook/yclients", json=body(settings=settings))
    assert r.status_code == 200 and r.json()["processed"] is False
    assert wait_for(lambda: db.fetchval("SELECT status FROM webhook_deliveries") == "failed")
    failed = db.fetchrow("SELECT attempts, last_error FROM webhook_deliveries")
    assert failed["attempts"] == MAX_DELIVERY_ATTEMPTS and failed["last_error"].startswith("TypeError")
    time.sleep(0.5)  # five more worker rounds: a failed delivery is not claimed again
    assert db.fetchrow("SELECT status, attempts FROM webhook_deliveries")["attempts"] == MAX_DELIVERY_ATTEMPTS
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"  # every try rolled back
    mine = [rec for rec in caplog.records if rec.name == worker.__name__]
    tries = [rec for rec in mine if rec.getMessage().startswith("webhook processing failed")]
    assert len(tries) == MAX_DELIVERY_ATTEMPTS
    assert [rec.exc_info is not None for rec in tries] == [True] + [False] * (MAX_DELIVERY_ATTEMPTS - 1)
    assert caplog.text.count("Traceback") == 1 and "broken_record" in caplog.text
    assert any(rec.getMessage() == "webhook delivery failed for good" for rec in mine)


def test_failed_deliveries_are_counted_on_the_dashboard(make_settings, db):
    from tests.helpers.staff import sign_in, staff_env

    settings = make_settings(**FAST, **staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        sign_in(client)
        assert 'data-testid="webhook-failed"' not in client.get("/admin/system").text
        for key in ("k1", "k2"):
            db.execute("""INSERT INTO webhook_deliveries (idempotency_key, yclients_salon_id, event,
                          install_generation, status, attempts, last_error, expires_at)
                          VALUES ($1, 500001, 'uninstall', 0, 'failed', 10, 'TypeError: boom',
                          now() + interval '1 day')""", key)
        page = client.get("/admin/system").text
    assert 'data-testid="webhook-failed">2 deliveries failed for good' in page
    assert db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'") == 2  # the worker left them


def test_a_crash_between_commit_and_processing_is_recovered_on_restart(make_settings, db, database_url):
    settings = make_settings(**FAST)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        land(client, settings.partner_token, salon_id=500003)
    # The delivery was committed and answered; the process died before processing it, and
    # a second one died mid-processing (its lease still held).
    import asyncpg

    async def stored_but_unprocessed():
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            await store(pool, Delivery(500003, settings.app_id, "freeze"), ttl_h=48)
        finally:
            await pool.close()

    run(stored_but_unprocessed())
    db.execute("""INSERT INTO webhook_deliveries (idempotency_key, yclients_salon_id, event, install_generation,
                  status, attempts, locked_until, expires_at) VALUES ('k2', 500003, 'uninstall', 0, 'processing', 1,
                  now() - interval '1 second', now() + interval '1 day')""")
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000"):  # the restart
        assert wait_for(lambda: db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'done'") == 2)
    assert db.fetchval("SELECT integration_status FROM salons") == "uninstalled"  # freeze, then uninstall


def test_gateway_down_during_uninstall_is_cleaned_up_later_and_shown_meanwhile(make_settings, db):
    from tests.helpers.staff import sign_in, staff_env

    settings = make_settings(**FAST, **staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        land(client, settings.partner_token, salon_id=500001)
        client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
        client.post("/sandbox/whatsapp/fault", data={"mode": "down"})
        r = client.post("/webhook/yclients", json=body(settings=settings))
        assert r.status_code == 200
        assert db.fetchval("SELECT integration_status FROM salons") == "uninstalled"
        assert db.fetchval("SELECT gateway_cleanup_pending_since IS NOT NULL FROM salons")
        sign_in(client)
        assert 'data-testid="cleanups-pending"' in client.get("/admin/system").text
        time.sleep(0.3)  # the worker keeps trying while the gateway is down
        assert db.fetchval("SELECT gateway_cleanup_pending_since IS NOT NULL FROM salons")
        client.post("/sandbox/whatsapp/fault", data={"mode": "none"})
        assert wait_for(lambda: db.fetchval("SELECT gateway_cleanup_pending_since IS NULL FROM salons"))
        assert 'data-testid="cleanups-pending"' not in client.get("/admin/system").text
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'whatsapp_session_deleted'") == 1


def test_keys_expire_and_are_purged(make_settings, db):
    settings = make_settings(WEBHOOK_IDEMPOTENCY_TTL_H="0.0003", **FAST)  # about a second
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        land(client, settings.partner_token, salon_id=500002)
        client.post("/webhook/yclients", json=body(salon_id=500002, event="freeze", settings=settings))
        assert db.count("webhook_deliveries") == 1
        assert wait_for(lambda: db.count("webhook_deliveries") == 0, timeout=10)  # purged by the app itself
        again = client.post("/webhook/yclients", json=body(salon_id=500002, event="freeze", settings=settings))
        assert again.json().get("duplicate") is None  # past the TTL it is a new delivery


# --- payment: the platform's `freezed → active` -----------------------------------------------

PAYMENT = {"payment_sum": 990, "currency_iso": "RUB", "payment_date": "2026-12-04 10:00:00",
           "period_from": "2026-12-04 00:00:00", "period_to": "2027-01-04 00:00:00", "sign": "ab12"}


@pytest.fixture
def lifecycle(make_settings):
    """A portal with one active salon (6101) installed through the fake YClients."""
    with partner_server() as (purl, market):
        settings = make_settings(SANDBOX="true", YCLIENTS_PARTNER_TOKEN=PARTNER_TOKEN, YCLIENTS_API_URL=purl,
                                 YCLIENTS_APP_ID=str(APP_ID), **FAST, **staff_env())
        with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
            yield client, settings, market


def activate_6101(client, settings, market, db) -> None:
    market.grant(6101)
    token = land_for_token(client, settings.partner_token, salon_id=6101)
    connect_whatsapp(db, 6101)
    assert client.post("/marketplace/activate", json={"token": token}).status_code == 200


def test_a_payment_unfreezes_a_frozen_salon_once_and_staff_see_it(lifecycle, db):
    client, settings, market = lifecycle
    activate_6101(client, settings, market, db)
    market.freeze(6101)
    assert client.post("/webhook/yclients", json=body(6101, "freeze", settings=settings)).json()["processed"]
    assert db.fetchval("SELECT integration_status FROM salons") == "frozen"
    market.pay(6101)
    paid = body(6101, "payment", settings=settings) | PAYMENT
    first = client.post("/webhook/yclients", json=paid)
    again = client.post("/webhook/yclients", json=paid)  # YClients retries the same delivery
    assert first.status_code == 200 and first.json()["processed"] is True
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    rows = db.fetch("SELECT payload FROM marketplace_events WHERE event_type = 'unfrozen'")
    assert len(rows) == 1
    payload = json.loads(rows[0]["payload"])
    assert payload["payment"]["period_to"] == "2027-01-04 00:00:00" and payload["payment"]["payment_sum"] == 990
    assert "sign" not in payload["payment"] and settings.partner_token not in rows[0]["payload"]
    sign_in(client)
    assert 'data-event="unfrozen"' in client.get("/admin/salons/6101").text


def test_a_payment_needs_no_payment_fields_and_a_renewal_leaves_an_active_salon_active(lifecycle, db):
    client, settings, market = lifecycle
    activate_6101(client, settings, market, db)
    bare = client.post("/webhook/yclients", json=body(6101, "payment", settings=settings))
    assert bare.status_code == 200 and bare.json()["processed"] is True
    # Next month's payment is a new delivery (its period differs), not a duplicate of the first.
    later = client.post("/webhook/yclients", json=body(6101, "payment", settings=settings) | PAYMENT)
    assert later.json()["processed"] is True
    assert db.fetchval("SELECT integration_status FROM salons") == "active"
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'payment_received'") == 2
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'unfrozen'") == 0


def test_a_payment_for_a_salon_we_never_saw_is_done_and_writes_no_salon(app_client, db):
    client, settings = app_client
    r = client.post("/webhook/yclients", json=body(6199, "payment", settings=settings) | PAYMENT)
    assert r.status_code == 200 and r.json()["processed"] is True
    assert db.count("salons") == 0
    assert db.fetchval("SELECT last_error FROM webhook_deliveries") == "unknown salon"


# --- entity webhooks at the lifecycle endpoint: a quick "ignored", counted --------------------

ENTITY = {"company_id": 6101, "resource": "record", "resource_id": 987654, "status": "create",
          "data": {"id": 987654, "services": [{"id": 1, "title": "Стрижка"}], "comment": "x" * 6000}}


def test_an_entity_webhook_is_ignored_with_a_2xx_counted_for_staff_and_in_metrics(make_settings, db):
    settings = make_settings(**FAST, **staff_env(), HEALTH_CHECK_TOKEN="health-token-for-tests",
                             WEBHOOK_RATE_LIMIT="3/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        answers = [client.post("/webhook/yclients", json=ENTITY | {"status": s}) for s in ("create", "update") * 3]
        # Six entity webhooks did not use up the lifecycle allowance of their sender.
        lifecycle = client.post("/webhook/yclients", json=body(6101, "freeze", settings=settings))
        sign_in(client)
        system = client.get("/admin/system").text
        metrics = client.get("/metrics", headers={"Authorization": "Bearer health-token-for-tests"}).text
    assert all(a.status_code == 200 and a.json() == {"success": True, "ignored": True, "reason": "entity webhook"}
               for a in answers)
    assert lifecycle.status_code == 200
    assert db.fetchval("SELECT count FROM entity_webhooks_ignored") == 6
    assert db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE event <> 'freeze'") == 0  # nothing stored
    assert 'data-testid="entity-webhooks-ignored"' in system and "record" in system
    assert 'portal_webhook_deliveries_total{outcome="entity_ignored",source="yclients"} 6.0' in metrics


def test_a_hostile_entity_resource_is_cut_to_a_safe_label(app_client, db):
    client, _ = app_client
    r = client.post("/webhook/yclients", json={"resource": "<script>ReCord</script>" * 20, "resource_id": 1})
    assert r.status_code == 200 and r.json()["ignored"] is True
    label = db.fetchval("SELECT last_resource FROM entity_webhooks_ignored")
    assert label == ("scriptrecordscript" * 3)[:40] and "<" not in label

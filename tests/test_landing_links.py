"""Landing links bound to one salon: what the signed data names must match the query, and a
link (its signature) works for one hour from its first use, for that salon only, and never
after the salon was uninstalled. Against real PostgreSQL, over HTTP."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding import token as onboarding_token
from tests.support.landing import landing_query
from tests.support.staff import API_KEY, sign_in, staff_env

JSON = {"Accept": "application/json"}
USER = {"id": 7, "name": "Анна", "email": "anna@example.com", "salon_name": "Лилия"}


def get(client, query: str):
    return client.get(f"/auth/yclients/redirect?{query}", headers=JSON)


@pytest.fixture
def app(make_settings):
    settings = make_settings(**staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        yield c, settings


@pytest.mark.parametrize("signed, query_salon", [
    ({"salon_id": 100}, 200),
    ({"salon_id": "100"}, 200),
    ({"salon_ids": [100, 101]}, 102),
])
def test_a_landing_whose_signed_data_names_another_salon_is_403_and_writes_nothing(app, db, signed, query_salon):
    client, settings = app
    r = get(client, landing_query(settings.partner_token, query_salon, user={**USER, **signed}))
    assert (r.status_code, r.json()["code"]) == (403, "SALON_MISMATCH")
    page = client.get(f"/auth/yclients/redirect?{landing_query(settings.partner_token, query_salon, user={**USER, **signed})}",
                      follow_redirects=False)
    assert page.status_code == 403 and "set-cookie" not in page.headers
    assert db.count("salons") == 0 and db.count("marketplace_events") == 0 and db.count("landing_links") == 0


@pytest.mark.parametrize("signed", [{"salon_id": True}, {"salon_id": 0}, {"salon_ids": "100"},
                                    {"salon_ids": [100, -1]}, {"salon_id": 2**40}])
def test_a_salon_id_in_the_signed_data_that_is_not_one_is_400(app, db, signed):
    client, settings = app
    r = get(client, landing_query(settings.partner_token, 100, user={**USER, **signed}))
    assert (r.status_code, r.json()["code"]) == (400, "USER_DATA_CORRUPT")
    assert db.count("salons") == 0


def test_bound_and_unbound_landings_are_recorded_and_shown_to_staff(app, db):
    client, settings = app
    assert get(client, landing_query(settings.partner_token, 101, user={**USER, "salon_ids": [100, 101]})).status_code == 200
    assert get(client, landing_query(settings.partner_token, 300, user=USER)).status_code == 200
    bound = dict(db.fetch("SELECT yclients_salon_id, landing_bound FROM salons"))
    assert bound == {101: True, 300: False}
    api = client.get("/marketplace/admin/salon/300/status", headers={"X-API-Key": API_KEY}).json()
    assert api["landing_bound"] is False
    assert client.get("/marketplace/admin/salon/101/status", headers={"X-API-Key": API_KEY}).json()["landing_bound"]
    sign_in(client)
    page = client.get("/admin/salons/300")
    assert "not bound" in page.text and 'data-testid="salon-landing-bound"' in page.text


def test_the_portal_remembers_a_hash_of_the_signature_never_the_signature(app, db):
    client, settings = app
    query = landing_query(settings.partner_token, 400, user=USER)
    sign = parse_qs(query)["user_data_sign"][0]
    assert get(client, query).status_code == 200
    row = db.fetchrow("SELECT * FROM landing_links")
    assert bytes(row["sign_hash"]) == hashlib.sha256(sign.encode()).digest()
    dump = json.dumps([dict(r) for r in db.fetch("SELECT * FROM landing_links")], default=str)
    assert sign not in dump and sign not in json.dumps([dict(r) for r in db.fetch("SELECT * FROM marketplace_events")],
                                                       default=str)


def test_a_link_used_for_one_salon_opens_no_other(app, db):
    """The signed data names no salon: the first use binds the link to its salon."""
    client, settings = app
    assert get(client, landing_query(settings.partner_token, 500, user=USER)).status_code == 200
    other = get(client, landing_query(settings.partner_token, 501, user=USER))
    assert (other.status_code, other.json()["code"]) == (403, "LINK_OTHER_SALON")
    assert db.fetchval("SELECT count(*) FROM salons WHERE yclients_salon_id = 501") == 0
    assert db.count("landing_links") == 1


def test_a_replay_within_the_hour_gets_a_fresh_token_for_the_same_salon_and_restarts_nothing(app, db):
    client, settings = app
    query = landing_query(settings.partner_token, 600, user=USER)
    first = get(client, query).json()
    db.execute("UPDATE salons SET landed_at = now() - interval '50 minutes'")
    db.execute("UPDATE landing_links SET first_used_at = now() - interval '50 minutes'")
    landed_at = db.fetchval("SELECT landed_at FROM salons")
    again = get(client, query)
    assert again.status_code == 200
    claims = onboarding_token.verify(again.json()["token"], secret=settings.jwt_secret)
    assert claims.yclients_salon_id == 600 and again.json()["token"] != first["token"]
    assert again.json()["expires_in"] <= 10 * 60  # what is left of the link's hour, no more
    assert db.fetchval("SELECT landed_at FROM salons") == landed_at  # the window did not restart
    assert db.fetchval("SELECT count(*) FROM marketplace_events WHERE event_type = 'landing_replayed'") == 1


def test_a_link_is_dead_an_hour_after_its_first_use(app, db):
    client, settings = app
    query = landing_query(settings.partner_token, 700, user=USER)
    assert get(client, query).status_code == 200
    db.execute("UPDATE landing_links SET first_used_at = now() - interval '61 minutes'")
    landed_at = db.fetchval("SELECT landed_at FROM salons")
    r = get(client, query)
    assert (r.status_code, r.json()["code"]) == (403, "LINK_EXPIRED")
    page = client.get(f"/auth/yclients/redirect?{query}", follow_redirects=False)
    assert page.status_code == 403 and "YClients" in page.text and "set-cookie" not in page.headers
    assert db.fetchval("SELECT landed_at FROM salons") == landed_at


def test_a_replay_after_an_uninstall_does_not_revive_the_salon(app, db):
    client, settings = app
    query = landing_query(settings.partner_token, 800, user=USER)
    assert get(client, query).status_code == 200
    uninstall = {"salon_id": 800, "application_id": settings.app_id, "event": "uninstall",
                 "partner_token": settings.partner_token}
    assert client.post("/webhook/yclients", json=uninstall).json()["processed"] is True
    r = get(client, query)
    assert (r.status_code, r.json()["code"]) == (403, "LINK_EXPIRED")
    assert db.fetchval("SELECT integration_status FROM salons") == "uninstalled"
    # Reinstalled since (another user's link): the old link still stays dead.
    assert get(client, landing_query(settings.partner_token, 800, user={**USER, "id": 8})).status_code == 200
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"
    assert get(client, query).status_code == 403


def test_landings_are_rate_limited_per_client(make_settings, db):
    settings = make_settings(LANDING_RATE_LIMIT="3/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        codes = [get(c, landing_query(settings.partner_token, 900 + i, user={**USER, "id": i + 1})).status_code
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]
    assert db.count("salons") == 3


def test_staff_can_let_a_link_work_again_after_a_reinstall_brought_the_same_link(app, db):
    """YClients may send byte-identical signed data on a reinstall: without a way out the owner
    would be refused for good. Staff forget the salon's links (two steps, audited)."""
    client, settings = app
    query = landing_query(settings.partner_token, 810, user=USER)
    assert get(client, query).status_code == 200
    uninstall = {"salon_id": 810, "application_id": settings.app_id, "event": "uninstall",
                 "partner_token": settings.partner_token}
    assert client.post("/webhook/yclients", json=uninstall).json()["processed"] is True
    assert get(client, query).status_code == 403
    sign_in(client)
    assert "same link again" in client.get("/admin/salons/810/release_links").text  # the confirmation
    assert get(client, query).status_code == 403  # the first step changes nothing
    done = client.post("/admin/salons/810/release_links", data={"reason": "owner reinstalled"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert db.fetchval("SELECT result FROM admin_audit_log WHERE action = 'release_landing_links'") == "ok"
    assert get(client, query).status_code == 200
    assert db.fetchval("SELECT integration_status FROM salons") == "pending_whatsapp"

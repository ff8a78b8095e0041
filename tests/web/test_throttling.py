"""Rate limits as callers meet them: login, admin API, owner endpoints; in memory and
shared through a real Redis by two portal instances."""

import uuid

from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land_for_token
from tests.helpers.redis_server import redis_url  # noqa: F401  (fixture)
from tests.helpers.staff import API_KEY, PASSWORD, USERNAME, staff_env


def test_login_is_throttled_per_user_name_and_says_when_to_retry(make_settings, db):
    settings = make_settings(**staff_env(), LOGIN_USER_RATE_LIMIT="3/minute", LOGIN_RATE_LIMIT="100/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        for _ in range(3):
            assert c.post("/admin/login", data={"username": USERNAME, "password": "nope"}).status_code == 401
        r = c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
        assert r.status_code == 429 and "Too many attempts" in r.text
        assert int(r.headers["retry-after"]) >= 1 and r.headers["ratelimit-policy"] == "3;w=60"
        assert "remaining=0" in r.headers["ratelimit"]
        assert "portal_admin" not in c.cookies  # even the right password waits
    assert db.fetchval("SELECT count(*) FROM admin_audit_log WHERE result = 'refused: rate limited'") == 1


def test_admin_api_over_the_limit_is_429_json(make_settings):
    settings = make_settings(**staff_env(), ADMIN_RATE_LIMIT="2/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        key = {"X-API-Key": API_KEY}
        assert [c.get("/marketplace/admin/salons", headers=key).status_code for _ in range(3)] == [200, 200, 429]
        r = c.get("/marketplace/admin/salons", headers=key)
        assert r.json()["code"] == "RATE_LIMITED" and r.json()["retry_after"] >= 1 and "retry-after" in r.headers


def test_owner_qr_is_limited_per_salon_not_globally(make_settings):
    settings = make_settings(OWNER_RATE_LIMIT="2/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        a = {"Authorization": f"Bearer {land_for_token(c, settings.partner_token, 500001)}"}
        b = {"Authorization": f"Bearer {land_for_token(c, settings.partner_token, 500002)}"}
        assert [c.post("/marketplace/api/qr", headers=a).status_code for _ in range(3)] == [200, 200, 429]
        assert c.post("/marketplace/api/qr", headers=b).status_code == 200


def test_a_429_to_htmx_is_a_fragment_for_the_widget_not_a_page(make_settings):
    """htmx swaps the answer into #link-status: a whole error page (top bar and all) would
    nest a page inside the page."""
    from tests.helpers.landing import land

    settings = make_settings(OWNER_RATE_LIMIT="1/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=500003)
        hx = {"HX-Request": "true", "HX-Target": "link-status"}
        assert c.post("/onboarding/whatsapp/start", headers=hx).status_code == 200
        r = c.post("/onboarding/whatsapp/start", headers=hx)
        assert r.status_code == 429 and "retry-after" in r.headers
        assert r.text.lstrip().startswith("<div") and "<html" not in r.text and "<header" not in r.text
        assert 'id="link-status"' in r.text and 'role="alert"' in r.text and 'data-code="RATE_LIMITED"' in r.text


def test_two_instances_share_counts_through_redis(make_settings, redis_url):
    url = f"{redis_url.rstrip('/')}/0" if redis_url.count("/") == 2 else redis_url
    env = {**staff_env(), "REDIS_URL": url, "LOGIN_USER_RATE_LIMIT": "4/minute", "LOGIN_RATE_LIMIT": "100/minute"}
    user = f"user-{uuid.uuid4().hex[:8]}"  # a fresh name: no counts from other runs
    first, second = create_app(make_settings(**env)), create_app(make_settings(**env))
    with TestClient(first, base_url="http://127.0.0.1:8000") as a, TestClient(second, base_url="http://127.0.0.1:8000") as b:
        codes = [client.post("/admin/login", data={"username": user, "password": "x"}).status_code
                 for client in (a, b, a, b)]
        assert codes == [401, 401, 401, 401]
        assert b.post("/admin/login", data={"username": user, "password": "x"}).status_code == 429
        health = a.get("/marketplace/health", headers={"Authorization": "Bearer health-token-for-tests"}).json()
        assert health["rateLimits"]["backend"] == "redis" and health["status"] == "ok"


def test_unreachable_redis_falls_back_and_health_says_degraded(make_settings):
    from tests.helpers.servers import free_port

    settings = make_settings(**staff_env(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", LOGIN_USER_RATE_LIMIT="2/minute")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        codes = [c.post("/admin/login", data={"username": "x", "password": "y"}).status_code for _ in range(3)]
        assert codes == [401, 401, 429]  # still limited: never fails open
        health = c.get("/marketplace/health", headers={"Authorization": "Bearer health-token-for-tests"}).json()
        assert health["status"] == "degraded" and any("redis unreachable" in w for w in health["warnings"])


def from_peer(app):
    """The app as seen from several client addresses: `X-Test-Peer` sets the request's peer
    (what uvicorn puts in `request.client`), so one test client can be two clients."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer:
                scope = {**scope, "client": (peer.decode(), 40000)}
        await app(scope, receive, send)

    return wrapped


def test_wrong_passwords_from_one_client_do_not_lock_the_real_person_out(make_settings, db):
    settings = make_settings(**staff_env())  # the defaults: 5/minute per (user, client), 100/hour per user
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        attacker, staff = {"X-Test-Peer": "203.0.113.9"}, {"X-Test-Peer": "198.51.100.7"}
        codes = [c.post("/admin/login", data={"username": USERNAME, "password": "guess"}, headers=attacker).status_code
                 for _ in range(6)]
        assert codes == [401] * 5 + [429]  # the attacker's guesses at this name stop ...
        r = c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD}, headers=staff,
                   follow_redirects=False)
        assert r.status_code == 303  # ... and the real person, elsewhere, still gets in
        # Signing in counts nothing: the real person can sign in again and again.
        for _ in range(6):
            assert c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD}, headers=staff,
                          follow_redirects=False).status_code == 303


def test_past_the_per_user_ceiling_each_guessing_client_waits_and_a_clean_one_is_checked(make_settings):
    settings = make_settings(**staff_env(), LOGIN_USER_RATE_LIMIT="4/hour")
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        def attempt(peer: str, password: str = "guess") -> int:
            return c.post("/admin/login", data={"username": USERNAME, "password": password},
                          headers={"X-Test-Peer": peer}, follow_redirects=False).status_code

        assert [attempt(f"203.0.113.{i}") for i in range(4)] == [401] * 4  # the ceiling is reached
        assert attempt("203.0.113.0") == 429  # a client that failed at this name waits ...
        assert attempt("203.0.113.0", PASSWORD) == 429  # ... even with the right password
        assert [attempt("203.0.113.50"), attempt("203.0.113.50")] == [401, 429]  # one guess per new client
        assert attempt("198.51.100.7", PASSWORD) == 303  # the real person, elsewhere, gets in


def test_a_distributed_guess_does_not_lock_the_real_staff_member_out(make_settings, db):
    """320 wrong passwords from 40 addresses (the defaults: 10/minute per client, 5/minute per
    user name and client, 100/hour per user name)."""
    settings = make_settings(**staff_env())
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        guessers = [f"203.0.113.{i}" for i in range(40)]
        codes = [c.post("/admin/login", data={"username": USERNAME, "password": f"guess-{n}"},
                        headers={"X-Test-Peer": peer}).status_code
                 for n in range(8) for peer in guessers]
        assert len(codes) == 320 and set(codes) == {401, 429}
        assert codes.count(401) == 100  # checked up to the per-user ceiling, then refused unchecked
        r = c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD},
                   headers={"X-Test-Peer": "198.51.100.7"}, follow_redirects=False)
        assert r.status_code == 303 and "portal_admin" in r.headers["set-cookie"]
        for peer in guessers:  # the guessers' clients stay limited, the right password or not
            assert c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD},
                          headers={"X-Test-Peer": peer}, follow_redirects=False).status_code == 429
    assert db.fetchval("SELECT count(*) FROM admin_audit_log WHERE action = 'login' AND result = 'ok'") == 1


def test_wrong_api_keys_do_not_block_the_right_password(make_settings, db):
    settings = make_settings(**staff_env(), LOGIN_RATE_LIMIT="10/minute")
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        same = {"X-Test-Peer": "203.0.113.9"}
        codes = [c.get("/marketplace/admin/salons", headers={**same, "X-API-Key": f"guess-{i:030d}"}).status_code
                 for i in range(11)]
        assert codes == [401] * 10 + [429]  # the API key's own count is spent ...
        r = c.post("/admin/login", data={"username": USERNAME, "password": PASSWORD}, headers=same,
                   follow_redirects=False)
        assert r.status_code == 303  # ... and the sign-in page, another family, is not touched


def test_forged_gateway_webhooks_do_not_limit_yclients_deliveries(make_settings, db):
    settings = make_settings()  # the default WEBHOOK_RATE_LIMIT: 120/minute
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        same = {"X-Test-Peer": "203.0.113.9"}
        codes = [c.post("/webhook/whatsapp", content=b"{}", headers=same).status_code for _ in range(130)]
        assert codes[-1] == 429 and codes.count(429) == 10  # the gateway's family is limited ...
        genuine = {"salon_id": 500001, "application_id": settings.app_id, "event": "freeze",
                   "partner_token": settings.partner_token}
        r = c.post("/webhook/yclients", json=genuine, headers=same)
        assert r.status_code == 200, r.text  # ... and YClients' is not


def test_admin_api_key_guessing_is_limited_per_client(make_settings, db):
    settings = make_settings(**staff_env(), LOGIN_RATE_LIMIT="10/minute")
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        guesser = {"X-Test-Peer": "203.0.113.9"}
        codes = [c.get("/marketplace/admin/salons", headers={**guesser, "X-API-Key": f"guess-{i:030d}"}).status_code
                 for i in range(12)]
        assert codes == [401] * 10 + [429] * 2
        # Past the limit even the right key waits: a guess that lands looks like one that did not.
        refused = c.get("/marketplace/admin/salons", headers={**guesser, "X-API-Key": API_KEY})
        assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        # Another client with the right key is not affected.
        assert c.get("/marketplace/admin/salons",
                     headers={"X-Test-Peer": "198.51.100.7", "X-API-Key": API_KEY}).status_code == 200


def test_gateway_webhooks_are_limited_per_client(make_settings, db):
    settings = make_settings(WEBHOOK_RATE_LIMIT="3/minute")
    with TestClient(from_peer(create_app(settings)), base_url="http://127.0.0.1:8000") as c:
        flood = {"X-Test-Peer": "203.0.113.9"}
        codes = [c.post("/webhook/whatsapp", content=b"{}", headers=flood).status_code for _ in range(4)]
        assert codes[:3] != [429] * 3 and codes[3] == 429
        assert c.post("/webhook/whatsapp", content=b"{}", headers={"X-Test-Peer": "198.51.100.7"}).status_code != 429

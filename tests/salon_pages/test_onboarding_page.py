"""The onboarding page shell, its language, and who may see it."""

from tests.helpers.landing import land, land_for_token


def test_without_a_session_it_explains_how_to_start(client):
    r = client.get("/onboarding")
    assert r.status_code == 401
    assert "YClients" in r.text and "Маркетплейс" in r.text


def test_language_from_accept_language_and_the_switch_overrides(client, settings):
    land(client, settings.partner_token, salon_id=12)
    assert "Активация" in client.get("/onboarding").text
    english = client.get("/onboarding", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert "Activation" in english and "Активация" not in english
    client.post("/language", data={"lang": "ru", "next": "/onboarding"})
    assert "Активация" in client.get("/onboarding", headers={"Accept-Language": "en"}).text


def test_bearer_token_opens_the_owners_own_page(client, settings):
    token = land_for_token(client, settings.partner_token, salon_id=13)
    client.cookies.clear()
    r = client.get("/onboarding", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and 'data-testid="salon-heading"' in r.text


def test_a_forged_token_is_not_accepted(client, settings):
    import jwt

    forged = jwt.encode({"sub": "13", "typ": "onboarding", "aud": "salon-portal:onboarding",
                         "iat": 0, "exp": 9999999999}, "wrong-secret-" * 4, algorithm="HS256")
    assert client.get("/onboarding", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    none_alg = jwt.encode({"sub": "13", "typ": "onboarding"}, None, algorithm="none")
    assert client.get("/onboarding", headers={"Authorization": f"Bearer {none_alg}"}).status_code == 401


def test_vary_header_on_the_page(client, settings):
    land(client, settings.partner_token, salon_id=14)
    assert "HX-Request" in client.get("/onboarding").headers["vary"]

"""Build landing URLs as YClients does, for tests.

`land` and `land_for_token` walk the owner's way in: the owner presses Install in the
marketplace (YClients then reports the install `pending`), and YClients opens our
registration URL. The marketplace is the app's own sandbox (demo mode), or the fake
YClients `market` a test serves.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from portal.onboarding.landing import encode_user_data, sign_user_data

# YClients' documented `user_data`: exactly these four fields.
OWNER = {"user_id": 7, "name": "Анна", "email": "anna@example.com", "phone": "79001234567"}


def user(user_id: int, **fields) -> dict:
    return {**OWNER, "user_id": user_id, **fields}


def landing_query(partner_token: str, salon_id=123, user: dict | None = None, **override) -> str:
    raw = json.dumps(user if user is not None else OWNER, ensure_ascii=False).encode()
    params = {"salon_id": salon_id, "user_data": encode_user_data(raw),
              "user_data_sign": sign_user_data(raw, partner_token)}
    params.update(override)
    return urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)


def install_pending(salon_id) -> None:
    """The owner pressed Install in every fake YClients a test serves (for tests that land
    over real HTTP, where the portal runs in another process or on another loop)."""
    from tests.helpers.partner import SERVED

    for served in SERVED:
        served.grant(int(salon_id))


def press_install(client, salon_id, market=None) -> None:
    """The owner presses Install for `salon_id`: YClients reports the install `pending` —
    in `market`, else in every fake YClients a test serves and in the app's own sandbox."""
    from tests.helpers.partner import SERVED

    markets = [market] if market is not None else list(SERVED)
    for served in markets:
        served.grant(int(salon_id))
    if market is None:
        r = client.get(f"/sandbox/install/{salon_id}", follow_redirects=False)
        assert r.status_code == 303 or markets, f"nowhere to press Install ({r.status_code}): pass market="


def land(client, partner_token: str, salon_id=123, *, market=None, install: bool = True, **kw):
    """Land as a browser; the client keeps the session cookie."""
    if install:
        press_install(client, salon_id, market)
    return client.get(f"/auth/yclients/redirect?{landing_query(partner_token, salon_id, **kw)}",
                      follow_redirects=False)


def land_for_token(client, partner_token: str, salon_id=123, *, market=None, install: bool = True, **kw) -> str:
    if install:
        press_install(client, salon_id, market)
    r = client.get(f"/auth/yclients/redirect?{landing_query(partner_token, salon_id, **kw)}",
                   headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["token"]

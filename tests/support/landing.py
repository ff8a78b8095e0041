"""Build landing URLs as YClients does, for tests."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from portal.onboarding.landing import encode_user_data, sign_user_data


def landing_query(partner_token: str, salon_id=123, user: dict | None = None, **override) -> str:
    # The default signed data names the salon, as a bound link does: each salon its own link.
    user = user if user is not None else {"id": 7, "name": "Анна", "phone": "+79001234567",
                                          "email": "anna@example.com", "salon_name": "Лилия",
                                          "salon_id": salon_id}
    raw = json.dumps(user, ensure_ascii=False).encode()
    params = {"salon_id": salon_id, "user_data": encode_user_data(raw),
              "user_data_sign": sign_user_data(raw, partner_token)}
    params.update(override)
    return urlencode({k: v for k, v in params.items() if v is not None})


def land(client, partner_token: str, salon_id=123, **kw):
    """Land as a browser; the client keeps the session cookie."""
    return client.get(f"/auth/yclients/redirect?{landing_query(partner_token, salon_id, **kw)}",
                      follow_redirects=False)


def land_for_token(client, partner_token: str, salon_id=123, **kw) -> str:
    r = client.get(f"/auth/yclients/redirect?{landing_query(partner_token, salon_id, **kw)}",
                   headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["token"]

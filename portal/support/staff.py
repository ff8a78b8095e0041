"""Support staff identity: scrypt password hashes, the signed staff cookie, the API key.

Staff credentials and onboarding credentials are separate worlds: the staff cookie is its
own cookie (`portal_admin`, path /admin, SameSite=Strict), signed with a salt no other
cookie uses, and carries a type the onboarding session never has. Nothing an owner holds
(an onboarding JWT, the owner's session) is ever read here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from portal.platform.settings import Settings
from portal.web.deps import web_deps

COOKIE = "portal_admin"
_SALT = "portal.support.staff-session.v1"
# scrypt cost: ~50 ms on a small server, 16 MiB of memory per check.
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_login(settings: Settings, username: str, password: str) -> bool:
    """True only for the configured staff account. Always spends the scrypt time, so the
    answer's timing says nothing about which part was wrong."""
    stored = settings.admin_password_hash or _DUMMY_HASH
    password_ok = verify_password(password, stored)
    user_ok = settings.admin_username is not None and hmac.compare_digest(
        username.encode(), settings.admin_username.encode())
    return password_ok and user_ok and settings.admin_password_hash is not None


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret, salt=_SALT)


def sign_in(response: Response, settings: Settings, username: str) -> None:
    value = _serializer(settings).dumps({"typ": "staff", "u": username})
    response.set_cookie(COOKIE, value, max_age=settings.admin_session_ttl_s, path="/admin", httponly=True,
                        samesite="strict", secure=settings.secure_cookies)


def sign_out(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict", secure=settings.secure_cookies)


def current_staff(request: Request) -> str | None:
    settings = web_deps(request).settings
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 1024:
        return None
    try:
        data = _serializer(settings).loads(raw, max_age=settings.admin_session_ttl_s)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("typ") != "staff" or data.get("u") != settings.admin_username:
        return None  # a cookie for an account that no longer exists is no sign-in
    return settings.admin_username


USER_CEILING = "login_user"


def login_limits(client: str, user: str) -> tuple[tuple[str, str], ...]:
    """The rate-limit (scope, key) pairs a failed sign-in counts against. Per client: a spray
    over many names stops. Per (user name, client): a guess at one name stops, for that
    client only. Per user name from everywhere (`USER_CEILING`, last): a much higher ceiling
    that never refuses the real person: past it, only the clients that already failed at
    this name wait (see `dashboard.login`)."""
    return (("login_client", client), ("login_user_client", f"{user}:{client}"), (USER_CEILING, user))


def api_key_matches(request: Request) -> bool:
    expected = web_deps(request).settings.admin_api_key
    given = request.headers.get("x-api-key")
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())

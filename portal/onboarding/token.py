"""The onboarding credential: a short-lived JWT that says "YClients user U, owner of salon N".

It is signed with JWT_SECRET (HS256, pinned on verify), carries an audience and a type that
only onboarding accepts, and lives at most an hour (the marketplace's own window). Admin
routes never accept it: they use a different credential altogether.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from portal.salons.ids import YclientsSalonId

AUDIENCE = "salon-portal:onboarding"
TOKEN_TYPE = "onboarding"  # noqa: S105 (the token's `typ` claim, not a secret)
MAX_TTL_S = 3600


@dataclass(frozen=True)
class OnboardingClaims:
    yclients_salon_id: YclientsSalonId
    expires_at: int
    # The YClients user the landing proved; None only for an unsigned landing an operator
    # allowed. A salon opens only for its owner user, so a salon handed over (or installed
    # anew by someone else) stops answering to the old user's tokens at once.
    yclients_user_id: int | None = None


class InvalidToken(Exception):
    pass


def issue(yclients_salon_id: YclientsSalonId, *, secret: str, ttl_s: int = MAX_TTL_S, now: float | None = None,
          yclients_user_id: int | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "sub": str(yclients_salon_id),
        "typ": TOKEN_TYPE,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + min(ttl_s, MAX_TTL_S),
        "jti": secrets.token_hex(8),
    }
    if yclients_user_id is not None:
        claims["uid"] = str(yclients_user_id)
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(token: str | None, *, secret: str) -> OnboardingClaims:
    if not token or not isinstance(token, str) or len(token) > 2048:
        raise InvalidToken("missing")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], audience=AUDIENCE,
            options={"require": ["exp", "iat", "sub", "aud", "typ"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(type(exc).__name__) from None
    sub = claims.get("sub")
    if claims.get("typ") != TOKEN_TYPE or not isinstance(sub, str) or not sub.isascii() or not sub.isdigit():
        raise InvalidToken("wrong type")
    uid = claims.get("uid")
    if uid is not None and (not isinstance(uid, str) or not uid.isascii() or not uid.isdigit()):
        raise InvalidToken("wrong user")
    return OnboardingClaims(yclients_salon_id=YclientsSalonId(int(sub)), expires_at=int(claims["exp"]),
                            yclients_user_id=int(uid) if uid is not None else None)


class VerifiedTokens:
    """Tokens already verified by this instance, with their claims, until they expire.

    An owner's page polls every 2 s with the same token; checking its signature each time
    costs more than the rest of an unchanged poll. A token is kept only after a full
    verify and never past its own `exp`; bounded, least recently used out first.
    """

    def __init__(self, secret: str, *, capacity: int = 20_000, clock: Callable[[], float] = time.time,
                 verifier: Callable[..., OnboardingClaims] = verify) -> None:
        self._secret = secret
        self._verifier = verifier
        self._capacity = capacity
        self._clock = clock
        self._known: OrderedDict[str, OnboardingClaims] = OrderedDict()

    def verify(self, token: str | None) -> OnboardingClaims:
        if token is not None and (claims := self._known.get(token)) is not None:
            if claims.expires_at > self._clock():
                self._known.move_to_end(token)
                return claims
            del self._known[token]
        claims = self._verifier(token, secret=self._secret)
        assert token is not None  # verify refused a missing token
        self._known[token] = claims
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)
        return claims

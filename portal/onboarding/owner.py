"""Who is asking: the salon owner's onboarding credential, from a Bearer header or the
session cookie. Every owner route derives the salon from this and nothing else: no route
takes a salon or session id from the client, so one salon's token never reaches another.

`owner_salon` is the one owner -> salon lookup every owner handler uses (the onboarding
page, the WhatsApp widget, the owner's JSON API).
"""

from __future__ import annotations

from starlette.requests import Request

from portal.onboarding.deps import onboarding_deps
from portal.onboarding.token import InvalidToken, OnboardingClaims
from portal.salons import store as salons
from portal.salons.store import Salon

SESSION_KEY = "onboarding_token"


def bearer_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_owner(request: Request, *, allow_session: bool = True) -> OnboardingClaims | None:
    token = bearer_token(request)
    if token is None and allow_session:
        token = request.session.get(SESSION_KEY)
    try:
        return onboarding_deps(request).verified_tokens.verify(token)
    except InvalidToken:
        return None


async def owner_with_salon(request: Request, *,
                           allow_session: bool = True) -> tuple[OnboardingClaims, Salon] | None:
    """The owner's credential and their salon, or None (no valid credential, or no such salon).

    `allow_session=False` for the JSON API, which takes the Bearer token only."""
    owner = current_owner(request, allow_session=allow_session)
    if owner is None:
        return None
    async with onboarding_deps(request).pool.acquire() as conn:
        salon = await salons.by_yclients_id(conn, owner.yclients_salon_id)
    if salon is None or not opens(salon, owner):
        return None
    return owner, salon


def opens(salon: Salon, owner: OnboardingClaims) -> bool:
    """Whether this credential still opens this salon: it names the salon's owner user (a
    salon bound to nobody — an unsigned landing an operator allowed — opens for its token)."""
    return salon.owner_user_id is None or salon.owner_user_id == owner.yclients_user_id


async def owner_salon(request: Request, *, allow_session: bool = True) -> Salon | None:
    """The salon of the owner asking, or None; see `owner_with_salon`."""
    found = await owner_with_salon(request, allow_session=allow_session)
    return found[1] if found else None

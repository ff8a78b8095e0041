"""What an admitted landing writes: the salon (upserted), the YClients user who brought it,
and — for the first landing of an install — that user as the salon's owner user.

The rule itself (who may open which salon) lives in `admission.py`; the statements live
with their tables (`salons/store.py`, `salons/marketplace_user_store.py`); this module
says which rows a landing writes together, each landing's writes in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.onboarding.landing import MarketplaceUser
from portal.platform.database import Connection
from portal.salons import marketplace_user_store as users
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.store import Salon


@dataclass(frozen=True)
class Ownership:
    """A salon as the landing sees it: the record, its owner user, whether that binds."""

    salon: Salon
    owner_user_id: int | None
    bound: bool


async def ownership(conn: Connection, yclients_salon_id: YclientsSalonId) -> Ownership | None:
    found = await salons.ownership(conn, yclients_salon_id)
    if found is None:
        return None
    salon, bound = found
    return Ownership(salon, salon.owner_user_id, bound)


async def _remember_user(conn: Connection, salon_pk: SalonPk, user: MarketplaceUser) -> None:
    await users.remember(conn, salon_pk, user.id, user.name, user.phone, user.email, user.is_approved)


@dataclass(frozen=True)
class Bound:
    salon: Salon
    is_new: bool


async def bind_owner(conn: Connection, yclients_salon_id: YclientsSalonId, user: MarketplaceUser, *,
                     confirmed: bool) -> Bound | None:
    """Make `user` the owner user of the salon's current install; None when the salon is
    bound to someone already (another landing won the race: decide again)."""
    async with conn.transaction():
        bound = await salons.bind_owner(conn, yclients_salon_id, user.salon_name, user.id, confirmed=confirmed)
        if bound is None:
            return None
        await _remember_user(conn, bound[0].pk, user)
    return Bound(*bound)


async def admit_returning(conn: Connection, salon_pk: SalonPk, user: MarketplaceUser | None) -> Salon:
    """The salon's own owner user is back (or an allowed unsigned landing): note the visit."""
    async with conn.transaction():
        salon = await salons.note_return(conn, salon_pk)
        assert salon is not None  # the salon was read moments ago and salons are never deleted
        if user is not None and user.id is not None:
            await _remember_user(conn, salon_pk, user)
    return salon


async def record_unsigned(conn: Connection, yclients_salon_id: YclientsSalonId) -> Bound:
    """An unsigned landing (ALLOW_UNSIGNED_LANDING): no user to bind, the salon upserted."""
    return Bound(*await salons.upsert_unsigned(conn, yclients_salon_id))


async def group_install(conn: Connection, lead_pk: SalonPk, branch_pks: list[SalonPk]) -> None:
    """One install for several branches (a chain's landing): the lead's WhatsApp serves all."""
    await salons.group_install(conn, lead_pk, branch_pks)

"""What an admitted landing writes: the salon (upserted), the YClients user who brought it,
and — for the first landing of an install — that user as the salon's owner user.

The rule itself (who may open which salon) lives in `admission.py`; this module only reads
and writes the rows, each write in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.onboarding.landing import MarketplaceUser
from portal.platform.database import Connection
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.store import COLUMNS, Salon

# The salon as the landing decides on it: its owner user and whether that binding still
# stands (an uninstalled salon's binding belonged to the install that is gone).
_OWNERSHIP = f"""
SELECT {COLUMNS}, owner_user_id, integration_status <> 'uninstalled' AND owner_user_id IS NOT NULL AS bound
FROM salons WHERE yclients_salon_id = $1
"""

# Binds a new install to its user. Only a salon that is not bound (new, uninstalled, or
# onboarded by an unsigned landing) takes a new owner user; a bound salon is left alone and
# the statement returns nothing, so two users racing for one salon cannot both win. A new
# install starts its onboarding again (an uninstalled or failed salon goes back to
# pending_whatsapp); an active, activating or frozen salon keeps its status.
_BIND = f"""
INSERT INTO salons (yclients_salon_id, name, landed_at, owner_user_id, owner_bound_at, install_confirmed)
VALUES ($1, $2, now(), $3, now(), $4)
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, salons.name),
    landed_at = now(),
    owner_user_id = EXCLUDED.owner_user_id,
    owner_bound_at = now(),
    install_confirmed = EXCLUDED.install_confirmed,
    install_lead_id = NULL,
    integration_status = CASE
        WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
        THEN 'pending_whatsapp' ELSE salons.integration_status END,
    updated_at = now()
WHERE salons.owner_user_id IS NULL OR salons.integration_status = 'uninstalled'
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""

# A returning owner user (or an unsigned landing an operator allowed): the salon exists and
# keeps its owner; a failed activation gets its Activate button back.
_RETURN = f"""
UPDATE salons SET landed_at = now(), updated_at = now(),
    integration_status = CASE WHEN integration_status = 'activation_failed'
                              THEN 'pending_whatsapp' ELSE integration_status END
WHERE id = $1
RETURNING {COLUMNS}
"""

_UNSIGNED_UPSERT = f"""
INSERT INTO salons (yclients_salon_id, landed_at) VALUES ($1, now())
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    landed_at = now(), updated_at = now(),
    integration_status = CASE WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
                              THEN 'pending_whatsapp' ELSE salons.integration_status END
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""

_REMEMBER_USER = """
INSERT INTO marketplace_users (salon_id, yclients_user_id, name, phone, email, is_approved)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (salon_id, yclients_user_id) DO UPDATE SET
    name = EXCLUDED.name, phone = EXCLUDED.phone, email = EXCLUDED.email,
    is_approved = EXCLUDED.is_approved, last_landed_at = now()
"""


@dataclass(frozen=True)
class Ownership:
    """A salon as the landing sees it: the record, its owner user, whether that binds."""

    salon: Salon
    owner_user_id: int | None
    bound: bool


async def ownership(conn: Connection, yclients_salon_id: YclientsSalonId) -> Ownership | None:
    row = await conn.fetchrow(_OWNERSHIP, yclients_salon_id)
    if row is None:
        return None
    return Ownership(Salon.from_row(row), row["owner_user_id"], bool(row["bound"]))


async def _remember_user(conn: Connection, salon_pk: SalonPk, user: MarketplaceUser) -> None:
    await conn.execute(_REMEMBER_USER, salon_pk, user.id, user.name, user.phone, user.email, user.is_approved)


@dataclass(frozen=True)
class Bound:
    salon: Salon
    is_new: bool


async def bind_owner(conn: Connection, yclients_salon_id: YclientsSalonId, user: MarketplaceUser, *,
                     confirmed: bool) -> Bound | None:
    """Make `user` the owner user of the salon's current install; None when the salon is
    bound to someone already (another landing won the race: decide again)."""
    async with conn.transaction():
        row = await conn.fetchrow(_BIND, yclients_salon_id, user.salon_name, user.id, confirmed)
        if row is None:
            return None
        await _remember_user(conn, row["pk"], user)
    return Bound(Salon.from_row(row), bool(row["inserted"]))


async def admit_returning(conn: Connection, salon_pk: SalonPk, user: MarketplaceUser | None) -> Salon:
    """The salon's own owner user is back (or an allowed unsigned landing): note the visit."""
    async with conn.transaction():
        row = await conn.fetchrow(_RETURN, salon_pk)
        assert row is not None  # the salon was read moments ago and salons are never deleted
        if user is not None and user.id is not None:
            await _remember_user(conn, salon_pk, user)
    return Salon.from_row(row)


async def record_unsigned(conn: Connection, yclients_salon_id: YclientsSalonId) -> Bound:
    """An unsigned landing (ALLOW_UNSIGNED_LANDING): no user to bind, the salon upserted."""
    row = await conn.fetchrow(_UNSIGNED_UPSERT, yclients_salon_id)
    assert row is not None  # an upsert with RETURNING always returns its row
    return Bound(Salon.from_row(row), bool(row["inserted"]))


async def group_install(conn: Connection, lead_pk: SalonPk, branch_pks: list[SalonPk]) -> None:
    """One install for several branches (a chain's landing): the lead's WhatsApp serves all."""
    async with conn.transaction():
        await conn.execute("UPDATE salons SET install_lead_id = NULL WHERE id = $1 AND install_lead_id IS NOT NULL",
                           lead_pk)
        await conn.execute("UPDATE salons SET install_lead_id = $1, updated_at = now()"
                           " WHERE id = ANY($2::bigint[]) AND install_lead_id IS DISTINCT FROM $1", lead_pk, branch_pks)


async def hand_over(conn: Connection, salon_pk: SalonPk, new_owner_user_id: int) -> int | None:
    """Staff give the salon to another YClients user; the previous owner user, or None."""
    previous: int | None = await conn.fetchval(
        "SELECT owner_user_id FROM salons WHERE id = $1 FOR UPDATE", salon_pk)
    await conn.execute(
        "UPDATE salons SET owner_user_id = $2, owner_bound_at = now(), updated_at = now() WHERE id = $1",
        salon_pk, new_owner_user_id)
    return previous


async def owner_phone(conn: Connection, salon_pk: SalonPk) -> str | None:
    """The phone of the salon's most recent marketplace user (from YClients' signed user
    data), the best clue to which country the owner dials from; None once erased."""
    phone: str | None = await conn.fetchval(
        "SELECT phone FROM marketplace_users WHERE salon_id = $1 AND phone IS NOT NULL"
        " ORDER BY last_landed_at DESC LIMIT 1", salon_pk)
    return phone

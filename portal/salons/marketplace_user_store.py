"""The YClients users who opened a salon from the marketplace (`marketplace_users`): what the
signed landing told us of them (name, phone, e-mail), kept per salon, and erased with the
salon's other personal data."""

from __future__ import annotations

from typing import Any

from portal.platform.database import Connection
from portal.salons.ids import SalonPk

_REMEMBER = """
INSERT INTO marketplace_users (salon_id, yclients_user_id, name, phone, email, is_approved)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (salon_id, yclients_user_id) DO UPDATE SET
    name = EXCLUDED.name, phone = EXCLUDED.phone, email = EXCLUDED.email,
    is_approved = EXCLUDED.is_approved, last_landed_at = now()
"""


async def remember(conn: Connection, salon_pk: SalonPk, yclients_user_id: int | None, name: str | None,
                   phone: str | None, email: str | None, is_approved: bool | None) -> None:
    await conn.execute(_REMEMBER, salon_pk, yclients_user_id, name, phone, email, is_approved)


async def owner_phone(conn: Connection, salon_pk: SalonPk) -> str | None:
    """The phone of the salon's most recent marketplace user (from YClients' signed user
    data), the best clue to which country the owner dials from; None once erased."""
    phone: str | None = await conn.fetchval(
        "SELECT phone FROM marketplace_users WHERE salon_id = $1 AND phone IS NOT NULL"
        " ORDER BY last_landed_at DESC LIMIT 1", salon_pk)
    return phone


async def recent(conn: Connection, salon_pk: SalonPk, limit: int = 20) -> list[dict[str, Any]]:
    """The salon's users as staff see them, the latest landing first."""
    rows = await conn.fetch(
        "SELECT yclients_user_id, name, last_landed_at FROM marketplace_users WHERE salon_id = $1"
        " ORDER BY last_landed_at DESC LIMIT $2", salon_pk, limit)
    return [dict(r) for r in rows]


async def erase(conn: Connection, salon_pk: SalonPk) -> None:
    await conn.execute("UPDATE marketplace_users SET name = NULL, phone = NULL, email = NULL WHERE salon_id = $1",
                       salon_pk)


_HOLDS_PERSONAL_DATA = """
SELECT EXISTS (SELECT 1 FROM marketplace_users WHERE salon_id = $1
               AND (name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL))
"""


async def hold_personal_data(conn: Connection, salon_pk: SalonPk) -> bool:
    """Whether any of the salon's users still has a name, phone or e-mail stored."""
    held: bool = await conn.fetchval(_HOLDS_PERSONAL_DATA, salon_pk)
    return held

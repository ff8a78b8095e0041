"""The SQL of personal data: what the marketplace told us of the owner (name, phone,
e-mail) and the salon's WhatsApp number, and erasing them."""

from __future__ import annotations

from portal.platform.database import Connection
from portal.salons.ids import SalonPk


async def erase(conn: Connection, salon_pk: SalonPk) -> None:
    """Blank every personal field of one salon; the caller holds the transaction."""
    await conn.execute("UPDATE marketplace_users SET name = NULL, phone = NULL, email = NULL WHERE salon_id = $1",
                       salon_pk)
    await conn.execute("UPDATE whatsapp_links SET phone = NULL, connected_phone = NULL WHERE salon_id = $1",
                       salon_pk)
    await conn.execute("UPDATE salons SET personal_data_erased_at = now() WHERE id = $1", salon_pk)


async def due_for_erasure(conn: Connection, retention_days: float, limit: int) -> list[SalonPk]:
    """Uninstalled longer than the retention, and not erased since the uninstall."""
    rows = await conn.fetch(
        """
        SELECT id FROM salons
        WHERE uninstalled_at IS NOT NULL
          AND uninstalled_at <= now() - make_interval(secs => $1 * 86400)
          AND (personal_data_erased_at IS NULL OR personal_data_erased_at < uninstalled_at)
        ORDER BY uninstalled_at LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        retention_days, limit,
    )
    return [SalonPk(r["id"]) for r in rows]


async def holds_personal_data(conn: Connection, salon_pk: SalonPk) -> bool:
    return bool(await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM marketplace_users WHERE salon_id = $1
                       AND (name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL))
            OR EXISTS (SELECT 1 FROM whatsapp_links WHERE salon_id = $1
                       AND (phone IS NOT NULL OR connected_phone IS NOT NULL))
        """,
        salon_pk,
    ))

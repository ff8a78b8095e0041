"""What a marketplace landing writes: the salon (upserted) and the user who brought it."""

from __future__ import annotations

from portal.onboarding.landing import Landing
from portal.platform.database import Connection
from portal.salons.store import COLUMNS, Salon

# A landing restarts onboarding for a salon that is not (or no longer) active: its window
# begins again. An active, activating or frozen salon keeps its status: a second visit
# from the marketplace must not undo an activation. (Frozen salons come back through
# activation, which needs WhatsApp, so they keep the status until then.)
_UPSERT = f"""
INSERT INTO salons (yclients_salon_id, name, landed_at)
VALUES ($1, $2, now())
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, salons.name),
    landed_at = now(),
    integration_status = CASE
        WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
        THEN 'pending_whatsapp' ELSE salons.integration_status END,
    updated_at = now()
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""


async def record_landing(conn: Connection, landing: Landing) -> tuple[Salon, bool]:
    """Upsert the salon and its marketplace user in one transaction; (salon, is_new)."""
    user = landing.user
    async with conn.transaction():
        row = await conn.fetchrow(_UPSERT, landing.yclients_salon_id, user.salon_name if user else None)
        assert row is not None  # an upsert with RETURNING always returns its row
        if user is not None and user.id is not None:
            await conn.execute(
                """
                INSERT INTO marketplace_users (salon_id, yclients_user_id, name, phone, email, is_approved)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (salon_id, yclients_user_id) DO UPDATE SET
                    name = EXCLUDED.name, phone = EXCLUDED.phone, email = EXCLUDED.email,
                    is_approved = EXCLUDED.is_approved, last_landed_at = now()
                """,
                row["pk"], user.id, user.name, user.phone, user.email, user.is_approved,
            )
    return Salon.from_row(row), bool(row["inserted"])

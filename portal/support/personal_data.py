"""Personal data: what the marketplace told us of the owner (name, phone, e-mail) and the
salon's WhatsApp numbers, erased at once by staff (support/service.py) or, after an
uninstall, after PERSONAL_DATA_RETENTION_DAYS by a round of the background worker. The event
trail keeps that it happened, never the values.

Here, not in `salons/`, because the numbers are the WhatsApp link's (`whatsapp/store.py`,
a package above salons): this module says which rows an erasure blanks, their stores how.
"""

from __future__ import annotations

import logging

from portal.platform.database import Connection, Pool
from portal.salons import event_store as events
from portal.salons import marketplace_user_store as users
from portal.salons import store as salons
from portal.salons.ids import SalonPk
from portal.whatsapp import store as links

log = logging.getLogger(__name__)

BATCH = 100  # salons per round: a long backlog drains over a few rounds, not one long lock


async def erase(conn: Connection, salon_pk: SalonPk) -> None:
    """Blank every personal field of one salon; the caller holds the transaction."""
    await users.erase(conn, salon_pk)
    await links.erase_phones(conn, salon_pk)
    await salons.note_personal_data_erased(conn, salon_pk)


async def holds_personal_data(conn: Connection, salon_pk: SalonPk) -> bool:
    return await users.hold_personal_data(conn, salon_pk) or await links.holds_phone(conn, salon_pk)


async def erase_expired(pool: Pool, retention_days: float) -> int:
    """One round: erase what is past its retention; how many salons were erased."""
    async with pool.acquire() as conn, conn.transaction():
        due = await salons.due_for_erasure(conn, retention_days, BATCH)
        for salon_pk in due:
            await erase(conn, salon_pk)
            await events.record(conn, salon_pk, "personal_data_erased",
                                {"why": "retention", "retention_days": retention_days})
    if due:
        log.info("personal data erased after retention", extra={"salons": len(due)})
    return len(due)

"""Personal data that expires: after an uninstall, the owner's name, phone and e-mail and
the WhatsApp number are erased after PERSONAL_DATA_RETENTION_DAYS, by a round of the
existing background worker. The event trail keeps that it happened, never the values.
"""

from __future__ import annotations

import logging

from portal.platform.database import Pool
from portal.salons import event_store as events
from portal.salons import personal_data_store as store

log = logging.getLogger(__name__)

BATCH = 100  # salons per round: a long backlog drains over a few rounds, not one long lock


async def erase_expired(pool: Pool, retention_days: float) -> int:
    """One round: erase what is past its retention; how many salons were erased."""
    async with pool.acquire() as conn, conn.transaction():
        due = await store.due_for_erasure(conn, retention_days, BATCH)
        for salon_pk in due:
            await store.erase(conn, salon_pk)
            await events.record(conn, salon_pk, "personal_data_erased",
                                {"why": "retention", "retention_days": retention_days})
    if due:
        log.info("personal data erased after retention", extra={"salons": len(due)})
    return len(due)

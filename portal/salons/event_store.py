"""The audit trail (`marketplace_events`): written after the critical work, never in its way.

`record` is for callers inside their own transaction; `record_quietly` is for after a
commit: a failure to write the trail is logged and swallowed, so it can never fail the
owner's request. `for_salon` reads a salon's trail back, newest first (the support pages).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from portal.platform.database import Connection, Pool
from portal.salons.ids import SalonPk

log = logging.getLogger(__name__)


async def record(conn: Connection, salon_pk: SalonPk | None, event_type: str,
                 payload: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO marketplace_events (salon_id, event_type, payload) VALUES ($1, $2, $3::jsonb)",
        salon_pk, event_type, json.dumps(payload or {}, ensure_ascii=False, default=str),
    )


async def record_quietly(pool: Pool, salon_pk: SalonPk | None, event_type: str,
                         payload: dict[str, Any] | None = None) -> bool:
    try:
        async with pool.acquire() as conn:
            await record(conn, salon_pk, event_type, payload)
        return True
    except Exception as exc:
        log.warning("event not recorded", extra={"event_type": event_type, "error": type(exc).__name__})
        return False


async def for_salon(conn: Connection, salon_pk: SalonPk, limit: int = 50) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_type, payload, created_at FROM marketplace_events"
        " WHERE salon_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        salon_pk, limit,
    )
    return [{"event_type": r["event_type"], "payload": json.loads(r["payload"]), "created_at": r["created_at"]}
            for r in rows]

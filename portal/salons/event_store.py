"""The audit trail (`marketplace_events`): written after the critical work, never in its way.

`record` is for callers inside their own transaction; `record_quietly` is for after a
commit: a failure to write the trail is logged and swallowed, so it can never fail the
owner's request.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)


async def record(conn, salon_id: int | None, event_type: str, payload: dict | None = None) -> None:
    await conn.execute(
        "INSERT INTO marketplace_events (salon_id, event_type, payload) VALUES ($1, $2, $3::jsonb)",
        salon_id, event_type, json.dumps(payload or {}, ensure_ascii=False, default=str),
    )


async def record_quietly(pool, salon_id: int | None, event_type: str, payload: dict | None = None) -> bool:
    try:
        async with pool.acquire() as conn:
            await record(conn, salon_id, event_type, payload)
        return True
    except Exception as exc:
        log.warning("event not recorded", extra={"event_type": event_type, "error": type(exc).__name__})
        return False


async def for_salon(conn, salon_id: int, limit: int = 50) -> list[dict]:
    rows = await conn.fetch(
        "SELECT event_type, payload, created_at FROM marketplace_events"
        " WHERE salon_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        salon_id, limit,
    )
    return [{"event_type": r["event_type"], "payload": json.loads(r["payload"]), "created_at": r["created_at"]} for r in rows]

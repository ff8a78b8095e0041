"""The audit trail (`marketplace_events`): written after the critical work, never in its way.

`record` is for callers inside their own transaction; `record_quietly` is for after a
commit: a failure to write the trail is logged and swallowed, so it can never fail the
owner's request. `for_salon` reads a salon's trail back, newest first (the support pages);
`landing_alerts` reads the view `salon_events` (migrations/019, this module's) and `funnel`
counts the onboarding's steps.
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


# Landings refused in a way staff must look at (onboarding/admission.py writes these).
LANDING_ALERTS = ("landing_refused_other_user", "installed_elsewhere", "landing_refused_unbound")


async def landing_alerts(pool: Pool, *, days: int = 7, limit: int = 20) -> list[dict[str, Any]]:
    """The newest landing alerts, one row per salon and kind, with how often it happened."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT DISTINCT ON (salon_id, event_type) event_type, payload, created_at,"
            "       yclients_salon_id, name, owner_user_id,"
            "       count(*) OVER (PARTITION BY salon_id, event_type) AS times"
            " FROM salon_events"
            " WHERE event_type = ANY($1::text[]) AND created_at > now() - make_interval(days => $2)"
            " ORDER BY salon_id, event_type, created_at DESC", list(LANDING_ALERTS), days)
    alerts = [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]
    alerts.sort(key=lambda a: a["created_at"], reverse=True)
    return alerts[:limit]


# $1 'today' (since midnight, the database's day) or 'week' (the last seven days).
_FUNNEL = """
SELECT count(DISTINCT salon_id) FILTER (WHERE event_type = 'landed') AS landed,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'qr_shown') AS qr_shown,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'passkey_asked') AS passkey,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'whatsapp_connected') AS linked,
       count(DISTINCT salon_id) FILTER (WHERE event_type = 'integration_activated') AS active
FROM marketplace_events
WHERE created_at >= CASE $1::text WHEN 'today' THEN date_trunc('day', now()) ELSE now() - interval '7 days' END
"""


async def funnel(conn: Connection, period: str) -> dict[str, int]:
    """How many salons reached each onboarding step in the period ('today' or 'week')."""
    return dict(await conn.fetchrow(_FUNNEL, period) or {})

"""Entity webhooks (`entity_webhooks_ignored`): YClients' record changes that reach the
lifecycle endpoint and are ignored, counted per day for the System page."""

from __future__ import annotations

from typing import Any

from portal.platform.database import Pool


async def count(pool: Pool, resource: str) -> None:
    """One more entity webhook ignored today (the System page shows the count)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO entity_webhooks_ignored (day, count, last_resource) VALUES (current_date, 1, $1)
               ON CONFLICT (day) DO UPDATE SET count = entity_webhooks_ignored.count + 1,
                   last_resource = EXCLUDED.last_resource, last_at = now()""", resource)


async def recent(pool: Pool, days: int = 7) -> dict[str, Any]:
    """Entity webhooks ignored today and over `days` days, and the last one's resource and time."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT coalesce(sum(count) FILTER (WHERE day = current_date), 0) AS today,
                      coalesce(sum(count), 0) AS recent,
                      (array_agg(last_resource ORDER BY last_at DESC))[1] AS last_resource, max(last_at) AS last_at
               FROM entity_webhooks_ignored WHERE day > current_date - $1::int""", days)
    return dict(row) if row is not None else {"today": 0, "recent": 0, "last_resource": None, "last_at": None}



"""The SQL of YClients' webhook deliveries (`webhook_deliveries`): storing, claiming,
finishing, retrying, purging. The salon writes an uninstall, a freeze or a payment makes are
`salons/store.py`'s; the count of entity webhooks is `entity_webhook_store.py`'s.

Delivery statuses: `pending` (due at `next_attempt_at`), `processing` (claimed, with a lease
in `locked_until`), `done`, `ignored` (an event we do not handle) and `failed` (given up
after MAX_DELIVERY_ATTEMPTS: never claimed again, counted on the dashboard).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portal.platform.database import Connection, Pool
from portal.salons import store as salons
from portal.salons.ids import YclientsSalonId

# A delivery that fails this many times is `failed` for good: a programming error or a salon
# row that refuses the write would otherwise be retried (and logged) forever.
MAX_DELIVERY_ATTEMPTS = 10
# A delivery that failed this often is listed on the dashboard while it is still retried.
ATTENTION_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    yclients_salon_id: YclientsSalonId
    event: str
    install_generation: int
    attempts: int  # including this one
    data: dict[str, Any] = field(default_factory=dict)  # a payment's payment and period data


async def insert_delivery(conn: Connection, key: str, yclients_salon_id: YclientsSalonId, event: str,
                          generation: int, status: str, ttl_s: float,
                          data: dict[str, Any] | None = None) -> int | None:
    """Store a delivery; its id, or None when the key is known and not yet expired.

    A key past its TTL is taken over as a new delivery (attempts and errors reset).
    """
    delivery_id: int | None = await conn.fetchval(
        """
        INSERT INTO webhook_deliveries (idempotency_key, yclients_salon_id, event, install_generation,
                                        status, expires_at, processed_at, data)
        VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6),
                CASE WHEN $5 = 'ignored' THEN now() END, $7::jsonb)
        ON CONFLICT (idempotency_key) DO UPDATE SET
            status = EXCLUDED.status, attempts = 0, next_attempt_at = now(), locked_until = NULL, data = EXCLUDED.data,
            last_error = NULL, received_at = now(), processed_at = EXCLUDED.processed_at,
            expires_at = EXCLUDED.expires_at
        WHERE webhook_deliveries.expires_at < now()
        RETURNING id
        """,
        key, yclients_salon_id, event, generation, status, ttl_s, json.dumps(data) if data else None)
    return delivery_id


async def claim(pool: Pool, delivery_id: int, lease_s: float) -> Claim | None:
    """Take a due delivery (or one whose claimer's lease ran out) for `lease_s`; None when
    it is not due, done, failed or held by someone else."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """UPDATE webhook_deliveries SET status = 'processing', attempts = attempts + 1,
                   locked_until = now() + make_interval(secs => $2)
               WHERE id = $1 AND next_attempt_at <= now()
                 AND (status = 'pending' OR (status = 'processing' AND locked_until < now()))
               RETURNING yclients_salon_id, event, install_generation, attempts, data""",
            delivery_id, float(lease_s))
    if row is None:
        return None
    return Claim(delivery_id, YclientsSalonId(row["yclients_salon_id"]), row["event"],
                 row["install_generation"], row["attempts"], json.loads(row["data"]) if row["data"] else {})


async def mark_done(conn: Connection, delivery_id: int, note: str | None) -> None:
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'done', processed_at = now(), locked_until = NULL,"
        " last_error = $2 WHERE id = $1", delivery_id, note)


async def release(pool: Pool, delivery_id: int) -> None:
    """Give a claimed delivery back untried (its processing was cancelled, nothing written):
    due at once for the next claimer, and the attempt not counted."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', locked_until = NULL, next_attempt_at = now(),"
            " attempts = greatest(attempts - 1, 0) WHERE id = $1 AND status = 'processing'", delivery_id)


async def retry_later(pool: Pool, delivery_id: int, error: str, delay_s: float) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'pending', locked_until = NULL, last_error = $2,
                   next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1""",
            delivery_id, error, float(delay_s))


async def mark_failed(pool: Pool, delivery_id: int, error: str) -> None:
    """Give up on a delivery: `failed` is never claimed again (and never purged by the TTL)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'failed', locked_until = NULL, last_error = $2,"
            " processed_at = now() WHERE id = $1", delivery_id, error)


async def count_failed(pool: Pool) -> int:
    """Deliveries given up on: the dashboard shows them, staff follow up by hand."""
    async with pool.acquire() as conn:
        failed: int = await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'")
    return failed


@dataclass(frozen=True)
class Backlog:
    """One worker round's work."""

    due: list[int]  # delivery ids
    cleanups: list[YclientsSalonId]
    purged: str  # the DELETE's status line, e.g. "DELETE 0"


async def backlog(pool: Pool) -> Backlog:
    """Due deliveries, pending gateway cleanups; and expired keys purged on the way."""
    async with pool.acquire() as conn:
        due = await conn.fetch(
            "SELECT id FROM webhook_deliveries WHERE status IN ('pending', 'processing') AND next_attempt_at <= now()"
            " AND (locked_until IS NULL OR locked_until < now()) ORDER BY id LIMIT 50")
        cleanups = await salons.cleanups_due(conn, limit=20)
        purged: str = await conn.execute(
            "DELETE FROM webhook_deliveries WHERE expires_at < now() AND status IN ('done', 'ignored')")
    return Backlog([r["id"] for r in due], cleanups, purged)


async def count_open(conn: Connection) -> int:
    """Deliveries not yet done: pending or being processed (the System page)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'processing')")
    return count


async def failing(conn: Connection, after_attempts: int, limit: int = 50) -> list[dict[str, Any]]:
    """Open deliveries that failed at least `after_attempts` times, oldest first (staff look)."""
    rows = await conn.fetch(
        "SELECT id, yclients_salon_id, event, attempts, last_error, received_at, next_attempt_at"
        " FROM webhook_deliveries WHERE status IN ('pending', 'processing') AND attempts >= $1"
        " ORDER BY received_at LIMIT $2", after_attempts, limit)
    return [dict(r) for r in rows]

"""The SQL of YClients' webhook deliveries: storing, claiming, finishing, retrying, purging,
the salon writes an uninstall, a freeze or a payment makes, and the count of entity webhooks
that reached the lifecycle endpoint.

Delivery statuses: `pending` (due at `next_attempt_at`), `processing` (claimed, with a lease
in `locked_until`), `done`, `ignored` (an event we do not handle) and `failed` (given up
after MAX_DELIVERY_ATTEMPTS: never claimed again, counted on the dashboard).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portal.platform.database import Connection, Pool
from portal.salons.ids import SalonPk, YclientsSalonId

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


async def install_generation(conn: Connection, yclients_salon_id: YclientsSalonId) -> int:
    """The salon's current install generation; 0 for a salon we never saw."""
    generation = await conn.fetchval(
        "SELECT install_generation FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    return int(generation or 0)


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


# A chain's branches share their lead's WhatsApp session: it is cleaned up only once the lead
# and every branch of the install are uninstalled (a branch has no session of its own).
_LIVE_BRANCHES = ("EXISTS (SELECT 1 FROM salons b"
                  " WHERE b.install_lead_id = {lead} AND b.integration_status <> 'uninstalled')")


async def mark_uninstalled(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    """Uninstalled: the key is forgotten and the gateway session queued for cleanup."""
    row = await conn.fetchrow(
        f"""UPDATE salons s SET integration_status = 'uninstalled', api_key_hash = NULL, api_key_prefix = NULL,
                   gateway_cleanup_pending_since = CASE WHEN s.install_lead_id IS NOT NULL
                       OR {_LIVE_BRANCHES.format(lead="s.id")} THEN NULL ELSE now() END,
                   updated_at = now()
               WHERE yclients_salon_id = $1 RETURNING id, install_lead_id""", yclients_salon_id)
    if row is None:
        return None
    if row["install_lead_id"] is not None:  # the last branch gone: the lead's session may go too
        await conn.execute(
            f"""UPDATE salons SET gateway_cleanup_pending_since = now()
                WHERE id = $1 AND integration_status = 'uninstalled' AND gateway_cleanup_pending_since IS NULL
                  AND NOT {_LIVE_BRANCHES.format(lead="$1")}""", row["install_lead_id"])
    return SalonPk(row["id"])


async def mark_frozen(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    # Frozen keeps the WhatsApp link and the key: a later activation brings it back.
    salon_pk: SalonPk | None = await conn.fetchval(
        "UPDATE salons SET integration_status = 'frozen', updated_at = now()"
        " WHERE yclients_salon_id = $1 RETURNING id", yclients_salon_id)
    return salon_pk


async def mark_paid(conn: Connection, yclients_salon_id: YclientsSalonId) -> tuple[SalonPk, bool] | None:
    """A successful payment: a frozen salon is active again (the platform's `freezed → active`);
    any other stays as it is. (salon, whether it was unfrozen); None for a salon we never saw."""
    row = await conn.fetchrow(
        """UPDATE salons s SET integration_status = CASE WHEN s.integration_status = 'frozen' THEN 'active'
                                                         ELSE s.integration_status END, updated_at = now()
           FROM (SELECT id, integration_status AS before FROM salons WHERE yclients_salon_id = $1 FOR UPDATE) b
           WHERE s.id = b.id RETURNING s.id, b.before = 'frozen' AS unfrozen""", yclients_salon_id)
    return None if row is None else (SalonPk(row["id"]), bool(row["unfrozen"]))


async def count_entity_webhook(pool: Pool, resource: str) -> None:
    """One more entity webhook ignored today (the System page shows the count)."""
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO entity_webhooks_ignored (day, count, last_resource) VALUES (current_date, 1, $1)
               ON CONFLICT (day) DO UPDATE SET count = entity_webhooks_ignored.count + 1,
                   last_resource = EXCLUDED.last_resource, last_at = now()""", resource)


async def entity_webhooks_ignored(pool: Pool, days: int = 7) -> dict[str, Any]:
    """Entity webhooks ignored today and over `days` days, and the last one's resource and time."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT coalesce(sum(count) FILTER (WHERE day = current_date), 0) AS today,
                      coalesce(sum(count), 0) AS recent,
                      (array_agg(last_resource ORDER BY last_at DESC))[1] AS last_resource, max(last_at) AS last_at
               FROM entity_webhooks_ignored WHERE day > current_date - $1::int""", days)
    return dict(row) if row is not None else {"today": 0, "recent": 0, "last_resource": None, "last_at": None}


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


async def still_uninstalled(pool: Pool, yclients_salon_id: YclientsSalonId) -> bool:
    async with pool.acquire() as conn:
        uninstalled = await conn.fetchval(
            "SELECT integration_status = 'uninstalled' FROM salons WHERE yclients_salon_id = $1", yclients_salon_id)
    return bool(uninstalled)


async def finish_cleanup(conn: Connection, yclients_salon_id: YclientsSalonId) -> SalonPk | None:
    """The gateway session is gone: the salon's cleanup is done and its link starts over."""
    salon_pk: SalonPk | None = await conn.fetchval(
        "UPDATE salons SET gateway_cleanup_pending_since = NULL WHERE yclients_salon_id = $1"
        " AND integration_status = 'uninstalled' RETURNING id", yclients_salon_id)
    if salon_pk is not None:
        await conn.execute(
            "UPDATE whatsapp_links SET status = 'idle', qr = NULL, qr_expires_at = NULL, phone = NULL,"
            " pairing_code = NULL, pairing_expires_at = NULL, updated_at = now() WHERE salon_id = $1", salon_pk)
    return salon_pk


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
        cleanups = await conn.fetch(
            "SELECT yclients_salon_id FROM salons WHERE gateway_cleanup_pending_since IS NOT NULL"
            " AND integration_status = 'uninstalled' ORDER BY gateway_cleanup_pending_since LIMIT 20")
        purged: str = await conn.execute(
            "DELETE FROM webhook_deliveries WHERE expires_at < now() AND status IN ('done', 'ignored')")
    return Backlog([r["id"] for r in due], [YclientsSalonId(r["yclients_salon_id"]) for r in cleanups], purged)

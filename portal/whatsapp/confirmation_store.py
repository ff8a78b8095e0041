"""The SQL of phone confirmations (`phone_confirmations`): one pending code per salon,
stored as a keyed hash, claimed for sending under the resend pause, tried a bounded number
of times, and deleted when used."""

from __future__ import annotations

from dataclasses import dataclass

from portal.platform.database import Connection
from portal.salons.ids import SalonPk


@dataclass(frozen=True)
class Pending:
    sent_to: str  # masked
    attempts: int
    expires_in: float  # seconds; <= 0 once expired
    resend_in: float  # seconds until another code may be sent; <= 0: now


async def pending(conn: Connection, salon_pk: SalonPk, resend_after_s: float) -> Pending | None:
    row = await conn.fetchrow(
        """SELECT sent_to, attempts, extract(epoch FROM expires_at - now()) AS expires_in,
                  extract(epoch FROM sent_at + make_interval(secs => $2) - now()) AS resend_in
           FROM phone_confirmations WHERE salon_id = $1""",
        salon_pk, resend_after_s)
    if row is None:
        return None
    return Pending(row["sent_to"], row["attempts"], float(row["expires_in"]), float(row["resend_in"]))


async def claim_send(conn: Connection, salon_pk: SalonPk, code_hash: bytes, sent_to: str,
                     lifetime_s: float, resend_after_s: float) -> bool:
    """Store a new code in place of the pending one, unless one was sent within the resend
    pause (then False: nothing changes). One statement, so two presses send one code."""
    claimed = await conn.fetchval(
        """INSERT INTO phone_confirmations (salon_id, code_hash, sent_to, expires_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))
           ON CONFLICT (salon_id) DO UPDATE
               SET code_hash = EXCLUDED.code_hash, sent_to = EXCLUDED.sent_to, attempts = 0,
                   sent_at = now(), expires_at = EXCLUDED.expires_at
               WHERE phone_confirmations.sent_at <= now() - make_interval(secs => $5)
           RETURNING true""",
        salon_pk, code_hash, sent_to, lifetime_s, resend_after_s)
    return bool(claimed)


async def withdraw(conn: Connection, salon_pk: SalonPk, code_hash: bytes) -> None:
    """Forget a code that could not be sent (only that code: a newer one stays)."""
    await conn.execute("DELETE FROM phone_confirmations WHERE salon_id = $1 AND code_hash = $2",
                       salon_pk, code_hash)


async def try_code(conn: Connection, salon_pk: SalonPk, max_attempts: int) -> tuple[bytes, int] | None:
    """Count one try against the pending code: (its hash, tries so far), or None when there is
    no code that may still be tried (none, expired, or its tries used up)."""
    row = await conn.fetchrow(
        """UPDATE phone_confirmations SET attempts = attempts + 1
           WHERE salon_id = $1 AND expires_at > now() AND attempts < $2
           RETURNING code_hash, attempts""",
        salon_pk, max_attempts)
    return (bytes(row["code_hash"]), row["attempts"]) if row is not None else None


async def use(conn: Connection, salon_pk: SalonPk, code_hash: bytes) -> bool:
    """Delete the code that matched: True for exactly one of two concurrent right answers."""
    return bool(await conn.fetchval(
        "DELETE FROM phone_confirmations WHERE salon_id = $1 AND code_hash = $2 RETURNING true",
        salon_pk, code_hash))

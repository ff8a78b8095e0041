"""The SQL of activation intents: what an activation is about to ask YClients, kept durably.

An intent is written and committed on its own, before the partner call and outside the
activation transaction, so it survives whatever happens to that transaction (a crash between
YClients' 301 and our commit included). One row per (salon, install generation): a retry of
the same install reopens it. `finished_at` NULL means the outcome is unknown: YClients may or
may not hold the install. YClients' install status carries no API key, so an unfinished
intent is our only proof that an install YClients reports is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from portal.platform.database import Connection, Pool
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus

# The salon's state (and whether this install was attempted before with its outcome still
# unknown) is read before the row is reopened, in the same short transaction.
_PRIOR = """
SELECT finished_at IS NULL AS open FROM activation_intents
WHERE salon_id = $1 AND install_generation = $2 FOR UPDATE
"""
_OPEN = """
INSERT INTO activation_intents (salon_id, install_generation, api_key_hash) VALUES ($1, $2, $3)
ON CONFLICT (salon_id, install_generation) DO UPDATE
SET attempts = activation_intents.attempts + 1, started_at = now(), finished_at = NULL, outcome = NULL,
    api_key_hash = EXCLUDED.api_key_hash, last_error = NULL
"""
# An intent with its salon: the view `activation_intent_salons` (migrations/019), this module's.
_UNFINISHED = """
SELECT salon_id, yclients_salon_id, name, integration_status, install_generation, api_key_hash,
       attempts, started_at, last_error
FROM activation_intent_salons
WHERE finished_at IS NULL AND started_at < now() - make_interval(secs => $1)
ORDER BY started_at LIMIT $2
"""


@dataclass(frozen=True)
class Intent:
    salon_pk: SalonPk
    yclients_salon_id: YclientsSalonId
    salon_name: str | None
    integration_status: IntegrationStatus
    install_generation: int
    api_key_hash: str
    attempts: int
    started_at: datetime
    last_error: str | None


async def open_intent(conn: Connection, salon_pk: SalonPk, generation: int, key_hash: str) -> bool:
    """Record that this install is about to be sent, in the caller's short transaction (which
    commits before the partner call); True when an earlier attempt of it is still unfinished,
    i.e. YClients may already hold it from that attempt."""
    prior = await conn.fetchval(_PRIOR, salon_pk, generation)
    await conn.execute(_OPEN, salon_pk, generation, key_hash)
    return bool(prior)


async def finish(conn: Connection, salon_pk: SalonPk, generation: int, outcome: str,
                 error: str | None = None) -> None:
    """Close the intent with a known outcome (see the migration for the four)."""
    await conn.execute(
        "UPDATE activation_intents SET finished_at = now(), outcome = $3, last_error = $4"
        " WHERE salon_id = $1 AND install_generation = $2 AND finished_at IS NULL",
        salon_pk, generation, outcome, error)


async def note_error(conn: Connection, salon_pk: SalonPk, generation: int, error: str) -> None:
    """The outcome is still unknown; say why for staff (the intent stays open)."""
    await conn.execute(
        "UPDATE activation_intents SET last_error = $3 WHERE salon_id = $1 AND install_generation = $2",
        salon_pk, generation, error)


def _intent(r: asyncpg.Record) -> Intent:
    return Intent(
        salon_pk=SalonPk(r["salon_id"]), yclients_salon_id=YclientsSalonId(r["yclients_salon_id"]),
        salon_name=r["name"], integration_status=IntegrationStatus(r["integration_status"]),
        install_generation=r["install_generation"], api_key_hash=r["api_key_hash"],
        attempts=r["attempts"], started_at=r["started_at"], last_error=r["last_error"])


async def unfinished(pool: Pool, older_than_s: float, limit: int = 50) -> list[Intent]:
    """Intents whose outcome is unknown, oldest first (for the reconciler and the dashboard)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_UNFINISHED, float(older_than_s), limit)
    return [_intent(r) for r in rows]


async def still_open(conn: Connection, salon_pk: SalonPk, generation: int) -> bool:
    """Re-read under the row lock: another instance's reconciler may have closed it."""
    found = await conn.fetchval(
        "SELECT 1 FROM activation_intents WHERE salon_id = $1 AND install_generation = $2"
        " AND finished_at IS NULL FOR UPDATE", salon_pk, generation)
    return found is not None


async def foreign_installs(pool: Pool, limit: int = 20) -> list[dict[str, object]]:
    """Salons YClients reports installed by someone who is not us (the dashboard's alert)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT yclients_salon_id, name, finished_at AS detected_at, last_error FROM activation_intent_salons"
            " WHERE outcome = 'foreign' AND integration_status <> 'active'"
            " ORDER BY finished_at DESC LIMIT $1", limit)
    return [dict(r) for r in rows]

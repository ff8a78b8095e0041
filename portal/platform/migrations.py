"""Schema migrations: plain SQL files in `migrations/`, applied in name order.

Each file runs in its own transaction and is recorded in `schema_migrations`. A session-level
advisory lock makes concurrent start-ups of several instances take turns: the second one
finds the work done and applies nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from portal.platform.locks import MIGRATIONS_LOCK
from portal.platform.resources import resource_path

log = logging.getLogger(__name__)

MIGRATIONS_DIR = resource_path("migrations")


def migration_files(folder: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(folder.glob("*.sql"))


async def apply_migrations(
    conn: asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record],
    folder: Path = MIGRATIONS_DIR,
) -> list[str]:
    """Apply what is missing; returns the versions applied by this call."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1, $2)", *MIGRATIONS_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for path in migration_files(folder):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.name)
            applied_now.append(path.name)
            log.info("migration applied", extra={"version": path.name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *MIGRATIONS_LOCK)
    return applied_now

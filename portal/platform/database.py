"""The connection pool: to DATABASE_URL, or to an embedded server started for us."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import anyio
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from portal.platform.embedded_postgres import EmbeddedPostgres
from portal.platform.migrations import apply_migrations
from portal.platform.settings import Settings

# What store functions take: a connection of their own or one borrowed from the pool.
Connection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
Pool: TypeAlias = asyncpg.Pool[Any]


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """Yield a migrated pool; stop the embedded server (if we started one) afterwards."""
    embedded = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir / "pg")
        dsn = await anyio.to_thread.run_sync(embedded.start)
    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=settings.database_pool_size,
            # A dead connection (server restarted) is dropped and replaced, not reused.
            max_inactive_connection_lifetime=60,
            server_settings={"application_name": "salon-portal"},
        )
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await anyio.to_thread.run_sync(embedded.stop)

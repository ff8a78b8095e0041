"""The connection pool: to DATABASE_URL, or to an embedded server started for us.

Also the one query the platform itself runs outside migrations: the health ping.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from portal.platform.embedded_postgres import EmbeddedPostgres
from portal.platform.migrations import apply_migrations
from portal.platform.settings import Settings

# What store functions take: a connection of their own or one borrowed from the pool.
# Quoted: asyncpg's classes are generic only in its stubs, not at run time.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Pool: TypeAlias = "asyncpg.Pool[Any]"

ERROR_LIMIT = 200
# userinfo of a URL (postgresql://user:secret@host) and key=value passwords of a libpq DSN.
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
_PASSWORD_PAIR = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)


@dataclass(frozen=True)
class Database:
    """The pool, and the DSN for the few connections that must not come from it (the
    notification listener: a pooled connection is reset, LISTENs and all, on release)."""

    pool: Pool
    dsn: str


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
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
            yield Database(pool, dsn)
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await anyio.to_thread.run_sync(embedded.stop)


def describe_error(exc: BaseException, *secrets: str | None) -> str:
    """`ClassName: message` of a database error, safe for an operator's screen.

    asyncpg and the OS put the DSN, host names and sometimes credentials into messages; the
    given secrets (e.g. DATABASE_URL) are blanked, and so is any URL userinfo or `password=`.
    """
    text = str(exc)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _PASSWORD_PAIR.sub(r"\1***", text)
    text = " ".join(text.split())  # one line
    summary = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return summary[:ERROR_LIMIT]


# What PostgreSQL being away looks like from asyncpg: a refused or vanished socket, a
# server shutting down or starting up, a connection that died under a query.
_OUTAGE_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
                  asyncpg.CrashShutdownError)
# The exception classes an outage may arrive as, for the app's handler (which asks
# `is_outage` before treating one as such: an OSError elsewhere is no outage).
OUTAGE_EXCEPTION_TYPES = (*_OUTAGE_ERRORS, asyncpg.InterfaceError, OSError, TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable for now (a restart, a failover), not
    a bug: an asyncpg connection error, or a socket error raised inside asyncpg (a refused
    or missing socket while the pool reconnects)."""
    if isinstance(exc, asyncpg.InterfaceError):
        # Also raised for misuse (two queries at once on one connection): that is a bug.
        return "closed" in str(exc)
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    if isinstance(exc, (OSError, TimeoutError)):
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_globals.get("__name__", "").startswith("asyncpg"):
                return True
            tb = tb.tb_next
    return False

"""Real PostgreSQL for tests: one server per run, one fresh database per test.

With DATABASE_URL unset, the run starts its own embedded server (pgserver) in a short temp
folder. A template database is migrated once; each test gets a copy of it, so tests never
see each other's rows and cost ~50 ms each instead of a migration run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import tempfile
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from portal.platform.migrations import apply_migrations


def run(coro):
    """Run a coroutine to completion from sync code, even where a loop is already running
    in this thread (Playwright's sync API keeps one in the main thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


class TestServer:
    """The PostgreSQL server of this test run and the template database on it."""

    def __init__(self, admin_dsn: str):
        self.admin_dsn = admin_dsn
        self.template = f"portal_template_{uuid.uuid4().hex[:8]}"

    async def _admin(self):
        return await asyncpg.connect(self.admin_dsn)

    async def create_template(self) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{self.template}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(with_database(self.admin_dsn, self.template))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    async def create_database(self) -> str:
        name = f"portal_test_{uuid.uuid4().hex[:12]}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        return with_database(self.admin_dsn, name)

    async def drop_database(self, dsn: str) -> None:
        name = urlsplit(dsn).path.lstrip("/")
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@contextlib.contextmanager
def embedded_server():
    from portal.platform.embedded_postgres import EmbeddedPostgres

    folder = tempfile.mkdtemp(prefix="portal-pg-")
    server = EmbeddedPostgres(__import__("pathlib").Path(folder))
    try:
        yield server.start()
    finally:
        server.stop()


class Db:
    """Synchronous access to a test's database, for assertions beside a TestClient."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    async def _run(self, method: str, sql: str, args):
        conn = await asyncpg.connect(self.dsn)
        try:
            return await getattr(conn, method)(sql, *args)
        finally:
            await conn.close()

    def fetch(self, sql: str, *args):
        return run(self._run("fetch", sql, args))

    def fetchrow(self, sql: str, *args):
        return run(self._run("fetchrow", sql, args))

    def fetchval(self, sql: str, *args):
        return run(self._run("fetchval", sql, args))

    def execute(self, sql: str, *args):
        return run(self._run("execute", sql, args))

    def count(self, table: str) -> int:
        return self.fetchval(f"SELECT count(*) FROM {table}")

"""Migrations: applied once, recorded, and safe when instances start together."""

import asyncio

import asyncpg

from portal.platform.migrations import apply_migrations, migration_files


async def _fresh_database(pg_server) -> str:
    # A database with no schema at all (not from the migrated template).
    import uuid

    from tests.helpers.database import with_database

    name = f"portal_mig_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_server.admin_dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return with_database(pg_server.admin_dsn, name)


async def test_applied_twice_applies_nothing_the_second_time(pg_server):
    dsn = await _fresh_database(pg_server)
    conn = await asyncpg.connect(dsn)
    try:
        first = await apply_migrations(conn)
        second = await apply_migrations(conn)
        assert first == [p.name for p in migration_files()] and first
        assert second == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(first)
        assert await conn.fetchval("SELECT to_regclass('salons') IS NOT NULL")
    finally:
        await conn.close()
        await pg_server.drop_database(dsn)


async def test_concurrent_migrations_apply_each_file_exactly_once(pg_server):
    dsn = await _fresh_database(pg_server)
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        applied = [name for result in results for name in result]
        assert sorted(applied) == [p.name for p in migration_files()]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
    finally:
        for c in conns:
            await c.close()
        await pg_server.drop_database(dsn)

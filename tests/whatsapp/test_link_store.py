"""The link store against real PostgreSQL, with real concurrent connections."""

from __future__ import annotations

import asyncio

import asyncpg

from portal.salons.ids import SalonPk, YclientsSalonId
from portal.whatsapp import store


async def _wait_until_blocked(watcher: asyncpg.Connection, pid: int) -> None:
    """Until the backend `pid` waits on a lock: the event we need, polled at the source."""
    for _ in range(500):
        waiting = await watcher.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid)
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the second insert never waited for the first")


async def test_get_or_create_sees_a_row_committed_by_a_concurrent_insert(database_url):
    """Two tabs on first load: the second insert waits for the first, then must return the
    row the first committed (the old ON CONFLICT DO NOTHING + UNION ALL read an older
    snapshot, found nothing and failed)."""
    first, second, watcher = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        pk = SalonPk(await first.fetchval(
            "INSERT INTO salons (yclients_salon_id, landed_at) VALUES (880001, now()) RETURNING id"))
        tx = first.transaction()
        await tx.start()
        await first.execute("INSERT INTO whatsapp_links (salon_id, session_name) VALUES ($1, 'salon-880001')", pk)
        racing = asyncio.create_task(store.get_or_create(second, pk, YclientsSalonId(880001)))
        await _wait_until_blocked(watcher, second.get_server_pid())
        await tx.commit()
        link = await asyncio.wait_for(racing, 5)
        assert link.salon_pk == pk and link.session_name == "salon-880001"
        assert await watcher.fetchval("SELECT count(*) FROM whatsapp_links") == 1
    finally:
        for conn in (first, second, watcher):
            await conn.close()


async def test_get_or_create_creates_once_and_then_reads(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        pk = SalonPk(await conn.fetchval(
            "INSERT INTO salons (yclients_salon_id, landed_at) VALUES (880002, now()) RETURNING id"))
        made = await store.get_or_create(conn, pk, YclientsSalonId(880002))
        again = await store.get_or_create(conn, pk, YclientsSalonId(880002))
        assert made.session_name == again.session_name and made.status == again.status
        assert await conn.fetchval("SELECT count(*) FROM whatsapp_links") == 1
    finally:
        await conn.close()


async def test_concurrent_first_requests_for_one_salon_all_get_its_link(database_url):
    """Many tabs' first QR requests at once: each must get the one row. The insert's
    ON CONFLICT used to name only the salon_id key, so two inserts that passed its check
    together collided on the other unique key (session_name) with a UniqueViolationError
    (1 of 160 requests answered 500). Rounds of real concurrent inserts on fresh salons."""
    conns = [await asyncpg.connect(database_url) for _ in range(8)]
    try:
        for round_ in range(60):
            yclients_id = YclientsSalonId(881000 + round_)
            pk = SalonPk(await conns[0].fetchval(
                "INSERT INTO salons (yclients_salon_id, landed_at) VALUES ($1, now()) RETURNING id", yclients_id))
            links = await asyncio.gather(*(store.get_or_create(c, pk, yclients_id) for c in conns))
            assert {link.session_name for link in links} == {f"salon-{yclients_id}"}
        assert await conns[0].fetchval("SELECT count(*) FROM whatsapp_links") == 60
    finally:
        for conn in conns:
            await conn.close()

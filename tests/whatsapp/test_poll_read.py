"""The poll's read for a salon its caller already holds (a page) answers and claims exactly as
the read by the token's YClients id (the owner's polls) does, with the salon's fields taken
from the salon given: real PostgreSQL, every case rolled back so both reads see one state."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime

import asyncpg
import pytest

from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.whatsapp import store

YCLIENTS_ID = YclientsSalonId(880101)
REFRESH_S, CONNECTED_REFRESH_S = 2.0, 30.0
EPOCH = datetime(2000, 1, 1)


async def _salon(conn: asyncpg.Connection) -> Salon:
    """The salon as a page holds it (its owner's lookup read it)."""
    found = await salons.by_yclients_id(conn, YCLIENTS_ID)
    assert found is not None
    return found


def _same_moment(read: store.PollRead | None) -> store.PollRead | None:
    """The read without the database's clock (each case's two reads are two transactions)."""
    if read is None or read.link is None:
        return read
    return dataclasses.replace(read, link=dataclasses.replace(read.link, now=EPOCH))


# (link status, seconds since checked (None: never), QR expires in (None: no QR)): waiting,
# settled and connected links, due and not due, and a shown QR about to expire.
LINKS = [("awaiting_scan", None, 15), ("awaiting_scan", 0.5, 15), ("awaiting_scan", 5, 15),
         ("awaiting_scan", 1.5, 3), ("awaiting_scan", 0.2, 3), ("starting", 10, None),
         ("connected", 10, None), ("connected", 60, None), ("connected", None, None),
         ("failed", 60, None), ("idle", None, None), (None, None, None)]


@pytest.fixture
async def conn(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _reads(conn: asyncpg.Connection, salon: Salon, link_status: str | None, checked_ago: float | None,
                 qr_in: float | None) -> tuple[store.PollRead | None, store.PollRead]:
    """The two reads without events (each in a transaction rolled back: a claim moves checked_at)."""
    reads = []
    for given in (False, True):
        tx = conn.transaction()
        await tx.start()
        try:
            if link_status is not None:
                await conn.execute(
                    "INSERT INTO whatsapp_links (salon_id, session_name, status, checked_at, qr, qr_expires_at)"
                    " VALUES ($1, 'salon-880101', $2, now() - make_interval(secs => $3), $4,"
                    " now() + make_interval(secs => $5))",
                    salon.pk, link_status, checked_ago, "qr" if qr_in is not None else None, qr_in)
            reads.append(await store.read_salon_for_poll(conn, salon, REFRESH_S, CONNECTED_REFRESH_S) if given else
                         await store.read_for_poll(conn, YCLIENTS_ID, REFRESH_S, CONNECTED_REFRESH_S))
        finally:
            await tx.rollback()
    by_id, given_read = reads
    assert given_read is not None
    return by_id, given_read


async def test_a_salon_given_is_read_and_claimed_as_by_its_yclients_id(conn):
    claims = set()
    for status, (link, checked_ago, qr_in) in itertools.product(["active", "uninstalled", "pending_whatsapp"],
                                                                  LINKS):
        tx = conn.transaction()
        await tx.start()
        try:
            pk = SalonPk(await conn.fetchval(
                "INSERT INTO salons (yclients_salon_id, landed_at, integration_status, owner_user_id)"
                " VALUES ($1, now(), $2, 7) RETURNING id", YCLIENTS_ID, status))
            salon = await _salon(conn)
            assert (salon.pk, salon.integration_status, salon.owner_user_id) == (pk, status, 7)
            by_id, given = await _reads(conn, salon, link, checked_ago, qr_in)
            assert _same_moment(given) == _same_moment(by_id), (status, link, checked_ago, qr_in)
            claims.add(given.claimed)
        finally:
            await tx.rollback()
    assert claims == {True, False}  # the cases cover both a claim won and none due


async def test_the_salon_given_decides_the_claim_not_a_second_read_of_salons(conn):
    """The fields come from the `Salon` given (read once, by the page's owner lookup): a salon
    given as uninstalled has no connected session left to look at, whatever its row says."""
    pk = SalonPk(await conn.fetchval(
        "INSERT INTO salons (yclients_salon_id, landed_at, integration_status) VALUES ($1, now(), 'active')"
        " RETURNING id", YCLIENTS_ID))
    await conn.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, checked_at)"
                       " VALUES ($1, 'salon-880101', 'connected', now() - interval '1 hour')", pk)
    uninstalled = dataclasses.replace(await _salon(conn), integration_status=IntegrationStatus.UNINSTALLED,
                                      owner_user_id=9)
    read = await store.read_salon_for_poll(conn, uninstalled, REFRESH_S, CONNECTED_REFRESH_S)
    assert not read.claimed and read.integration_status is IntegrationStatus.UNINSTALLED
    assert read.owner_user_id == 9 and read.link is not None and read.link.status == "connected"
    active = dataclasses.replace(uninstalled, integration_status=IntegrationStatus.ACTIVE, owner_user_id=None)
    assert (await store.read_salon_for_poll(conn, active, REFRESH_S, CONNECTED_REFRESH_S)).claimed


async def test_with_events_a_salon_given_reads_its_link_as_by_its_yclients_id(conn):
    pk = SalonPk(await conn.fetchval(
        "INSERT INTO salons (yclients_salon_id, landed_at, owner_user_id) VALUES ($1, now(), 7) RETURNING id",
        YCLIENTS_ID))
    salon = await _salon(conn)
    assert _same_moment(await store.read_salon_link(conn, salon)) == _same_moment(
        await store.read_for_owner(conn, YCLIENTS_ID))  # no link yet
    await conn.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, checked_at)"
                       " VALUES ($1, 'salon-880101', 'awaiting_scan', now() - interval '1 hour')", pk)
    read = await store.read_salon_link(conn, salon)
    assert _same_moment(read) == _same_moment(await store.read_for_owner(conn, YCLIENTS_ID))
    assert read.link is not None and read.link.status == "awaiting_scan" and not read.claimed

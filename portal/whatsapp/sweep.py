"""The safety net under the gateway's events: one sweep for the whole deployment.

Events may be lost (a portal restart, a network blip), so every `WHATSAPP_SAFETY_POLL_S` the
gateway is asked once, in ONE list call, where all its sessions stand. Only the links whose
stored status differs from the list are read again, each with the per-session `refresh` and
stored like any answer: the list is a hint, as an event is, and what is stored is what the
session's own read says. Owners' polls never ask the gateway for this.

One instance at a time sweeps: the holder of a PostgreSQL session advisory lock, taken on a
connection of its own. An instance that stops closes that connection, one that dies has it
closed by the server, and the next instance to try (every interval) takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from portal.whatsapp import store as links
from portal.whatsapp.breaker import summarize_error
from portal.whatsapp.deps import WhatsAppDeps
from portal.whatsapp.link import GatewayError, LinkState, LinkStatus
from portal.whatsapp.service import _as_seen, _refresh
from portal.whatsapp.store import Link

log = logging.getLogger(__name__)


def differs(link: Link, listed: Mapping[str, LinkState]) -> bool:
    """Whether the gateway's list says something else than the stored link (a session the list
    does not hold is idle: deleted, or never started)."""
    seen = _as_seen(link.status, listed.get(link.session_name, LinkState(LinkStatus.IDLE)))
    if seen.status is not link.status:
        return True
    return seen.phone is not None and link.phone is not None and seen.phone != link.phone


async def sweep_once(runtime: WhatsAppDeps) -> int:
    """One sweep: the list, the stored links, a confirming read of each that differs. Returns
    how many were confirmed (read one by one)."""
    async with asyncio.timeout(runtime.settings.waha_timeout_s):
        listed = await runtime.gateway.list_states()
    async with runtime.pool.acquire() as conn:
        watched = await links.watched_links(conn)
    confirmed = 0
    for link in watched:
        if differs(link, listed):
            await _refresh(runtime, link.salon_pk, link)
            confirmed += 1
    return confirmed


class SafetySweep:
    """Tries for the sweep lock every interval; sweeps while it holds it."""

    def __init__(self, runtime: WhatsAppDeps, dsn: str, *, interval_s: float) -> None:
        self._runtime = runtime
        self._dsn = dsn
        self._interval_s = interval_s
        self._conn: asyncpg.Connection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.holding = False  # read by tests and the bench
        self.sweeps = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-safety-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._let_go()

    async def _run(self) -> None:
        while True:
            try:
                if await self._hold():
                    await self._sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                # The lock's connection (or the database) is gone: let go, try again next time.
                log.warning("safety sweep lost its database connection", extra={"error": type(exc).__name__})
                await self._let_go()
            except Exception:  # the loop must outlive any one failure: a dead one sweeps no more
                log.exception("safety sweep failed")
                await self._let_go()
            await asyncio.sleep(self._interval_s)

    async def _hold(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            self.holding = False
            self._conn = await asyncpg.connect(self._dsn, server_settings={"application_name": "salon-portal-sweep"})
        if self.holding:
            self.holding = await links.still_holds_sweep(self._conn)
        else:
            self.holding = await links.try_hold_sweep(self._conn)
            if self.holding:
                log.info("this instance now sweeps the gateway")
        return self.holding

    async def _sweep(self) -> None:
        if self._runtime.breaker.state != "closed":
            return  # the gateway is struggling: the breaker's own probe decides when to ask again
        try:
            await sweep_once(self._runtime)
        except (GatewayError, TimeoutError) as exc:
            log.info("safety sweep could not list the gateway's sessions", extra={"error": summarize_error(exc)})
        self.sweeps += 1

    async def _let_go(self) -> None:
        self.holding = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)  # ends the session: the lock goes with it

"""Changes announced to every instance: one PostgreSQL LISTEN/NOTIFY channel.

Each instance holds one dedicated connection that LISTENs on `portal_events`. A payload is
`<kind>:<rest>` (e.g. `link:42:7`, `breaker:qrGeneration`); subscribers register per kind
and are called on the event loop. Payloads are compact and carry nothing personal.

NOTIFY is fire-and-forget: whatever happens while the listener is away is lost. So the
listener is watched (a termination callback and a periodic ping), and after every
(re)connect each `on_reconnect` hook runs so caches reload what they may have missed. While
disconnected, `connected` is False and caches must not trust themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from portal.platform import store

log = logging.getLogger(__name__)

CHANNEL = "portal_events"
Subscriber = Callable[[str], None]
ReconnectHook = Callable[[], Awaitable[None]]


class Notifications:
    """The listener of one instance, with reconnects; `publish` is for writers without a trigger."""

    def __init__(self, dsn: str, *, ping_interval_s: float = 5.0, retry_s: float = 0.5) -> None:
        self._dsn = dsn
        self._ping_interval_s = ping_interval_s
        self._retry_s = retry_s
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._reconnect_hooks: list[ReconnectHook] = []
        self._conn: asyncpg.Connection[Any] | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0  # how many times a lost listener came back (for tests, health)

    def subscribe(self, kind: str, subscriber: Subscriber) -> None:
        self._subscribers[kind].append(subscriber)

    def on_reconnect(self, hook: ReconnectHook) -> None:
        self._reconnect_hooks.append(hook)

    @property
    def backend_pid(self) -> int | None:
        """The listener's server process (tests terminate it to prove the reconnect)."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="notifications-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    def _dispatch(self, connection: object, pid: int, channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        kind, _, rest = payload.partition(":")
        for subscriber in self._subscribers.get(kind, ()):
            try:
                subscriber(rest)
            except Exception:  # one bad subscriber must not silence the others
                log.exception("notification subscriber failed", extra={"kind": kind})

    async def _connect(self) -> None:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "salon-portal-listener"})
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(CHANNEL, self._dispatch)
        self._conn = conn
        self.connected.set()

    async def _close(self) -> None:
        self.connected.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _watch(self) -> None:
        while True:
            await self._wait_for_loss()
            log.warning("notification listener lost; reconnecting")
            await self._close()
            while True:
                try:
                    await self._connect()
                    break
                except (OSError, asyncpg.PostgresError):
                    await asyncio.sleep(self._retry_s)
            self.reconnects += 1
            for hook in self._reconnect_hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("reload after reconnect failed")

    async def _wait_for_loss(self) -> None:
        """Return when the connection is gone: told by asyncpg, or found by a ping (a
        half-open TCP connection tells nobody)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._ping_interval_s)
                return
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            try:
                await asyncio.wait_for(store.ping_connection(conn), self._ping_interval_s)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return


async def publish(conn: store.Connection, kind: str, rest: str) -> None:
    """Announce a change that no trigger announces (e.g. the shared breaker's state)."""
    await store.notify(conn, CHANNEL, f"{kind}:{rest}")

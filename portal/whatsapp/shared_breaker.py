"""One circuit breaker for the whole deployment: breaker.Rules over a PostgreSQL row.

Owns: this instance's mirror of the shared state (so `state`, read on every poll, costs no
database round trip), keeping that mirror current (announcements on portal_events, a reload
after the listener reconnects, a heartbeat that also compares versions), and the record of
which breaker version this instance has applied (the System page's "seen by k of n").

Totals (calls, failures, rejections) are the deployment's: each instance adds what it counted
to the row at every heartbeat and reads everyone's back (`stats` adds what it counted since).
A staff action waiting for every instance to apply its change (`wait_seen`) is woken by the
instances' `breaker_seen` announcements, not by reading the table in a loop.

Every decision that changes the state goes through the store atomically: a failure, a
success that matters, a half-open trial claim (so half-open admits at most
success_threshold trials in total, not per instance), reset and force open. Admission reads
the row (one round trip, next to a gateway call that takes seconds), so an instance never
calls the gateway on a breaker another instance opened a moment ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from portal.whatsapp.breaker import BreakerCalls, BreakerState, Change, Rules, Shared, Totals, notify_transition
from portal.whatsapp.breaker_store import BreakerStore

log = logging.getLogger(__name__)


class SharedBreaker(BreakerCalls):
    def __init__(self, store: BreakerStore, rules: Rules, *, name: str = "qrGeneration",
                 on_transition: Callable[[BreakerState, BreakerState], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, heartbeat_s: float = 5.0) -> None:
        super().__init__(rules, name)
        self._store = store
        self._on_transition = on_transition
        self._clock = clock
        self.heartbeat_s = heartbeat_s
        self.instance_id = store.instance_id
        # The mirror, and the database's clock when it was read (advanced with our own clock,
        # so the lazy open -> half_open is seen locally at about the right moment).
        self._mirror = Shared()
        self._mirror_now = 0.0
        self._mirror_at = clock()
        self._reported = BreakerState.CLOSED
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        # The deployment's totals as last read, and how much of ours they already hold.
        self._shared_totals = Totals()
        self._added = Totals()
        # Set (and replaced) whenever an instance announces it applied a version: every
        # waiter holds the event current when it last read, so no announcement is missed.
        self._seen_news = asyncio.Event()

    # --- the mirror -------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._mirror.version

    def _mirror_to(self, s: Shared, now: float) -> None:
        if s.version < self._mirror.version:
            return  # an older read overtaken by a newer one
        self._mirror, self._mirror_now, self._mirror_at = s, now, self._clock()
        self._view()

    def _view(self) -> tuple[Shared, float]:
        now = self._mirror_now + (self._clock() - self._mirror_at)
        s = self.rules.settle(self._mirror, now, now)
        if s.state is not self._reported:  # what this instance sees changed (metrics gauge)
            old, self._reported = self._reported, s.state
            notify_transition(self.name, self._on_transition, old, s.state)
        return s, now

    def announced(self, rest: str) -> None:
        """A `breaker:` notification's payload after the kind: `<name>:<version>`."""
        name, _, version = rest.rpartition(":")
        if name == self.name:
            self._news_of_seen()  # the instance that made the change applied it
        if name == self.name and version.isdigit() and int(version) > self._mirror.version:
            self._schedule_reload()

    def acknowledged(self, rest: str) -> None:
        """A `breaker_seen:` notification: `<name>:<version>` applied by some instance."""
        if rest.rpartition(":")[0] == self.name:
            self._news_of_seen()

    def _news_of_seen(self) -> None:
        news, self._seen_news = self._seen_news, asyncio.Event()
        news.set()

    def _schedule_reload(self) -> None:
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_again = True  # announcements arriving mid-reload: one more read
            return
        self._reload_task = asyncio.create_task(self._reload_until_current(), name="breaker-reload")

    async def _reload_until_current(self) -> None:
        while True:
            self._reload_again = False
            try:
                await self.reload()
            except Exception:  # the heartbeat compares versions and tries again
                log.exception("breaker %s: reload failed", self.name)
                return
            if not self._reload_again:
                return

    async def reload(self) -> None:
        """Read the shared state into the mirror and record the version this instance applied."""
        s, now = await self._store.load()
        self._mirror_to(s, now)
        await self._store.applied(self._mirror.version)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                if await self._store.heartbeat() > self._mirror.version:
                    await self.reload()
                await self.share_totals()
            except Exception:
                log.warning("breaker %s: heartbeat failed", self.name, exc_info=True)

    async def share_totals(self) -> None:
        """Add this instance's counts since the last time to the deployment's; read theirs."""
        counted = self._counted()
        self._shared_totals = await self._store.add_totals(counted - self._added)
        self._added = counted

    def _totals(self) -> Totals:
        return self._shared_totals + (self._counted() - self._added)

    async def start(self) -> None:
        await self._store.register()
        await self.reload()
        await self.share_totals()
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="breaker-heartbeat")

    async def stop(self) -> None:
        for task in (self._heartbeat_task, self._reload_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # what was counted since the last heartbeat
            await self.share_totals()
        with contextlib.suppress(Exception):  # the row ages out by itself if this fails
            await self._store.leave()

    # --- decisions, through the store ---------------------------------------------------

    async def _admit(self, claim: str) -> tuple[Shared, bool]:
        s, now = await self._store.load()
        self._mirror_to(s, now)
        settled = self.rules.settle(s, now, now)
        if settled.state is BreakerState.CLOSED:
            return settled, True
        if settled.state is BreakerState.OPEN:
            return settled, False
        if len(settled.trials) >= self.success_threshold:
            return settled, False  # full: no need to lock the row to say no
        new, now = await self._store.change(
            lambda cur, n: self.rules.admit(self.rules.settle(cur, n, n), n, claim))
        self._mirror_to(new, now)
        return new, new.state is BreakerState.CLOSED or claim in dict(new.trials)

    async def _change(self, change: Change) -> Shared:
        new, now = await self._store.change(lambda s, n: change(s, n, n))
        self._mirror_to(new, now)
        return new

    async def _after_success(self, episode: int, claim: str | None) -> None:
        m = self._mirror
        if claim is None and m.state is BreakerState.CLOSED and m.consecutive_failures == 0 and m.episode == episode:
            return  # nothing to reset: no write for the common case
        await super()._after_success(episode, claim)

    async def reset(self) -> int:
        """Close everywhere (also ends force open); returns the breaker version it made."""
        return (await self._change(self.rules.reset)).version

    async def force_open(self) -> int:
        """Maintenance switch for every instance; returns the breaker version it made."""
        return (await self._change(self.rules.force_open)).version

    # --- who saw it ----------------------------------------------------------------------

    async def seen(self, version: int) -> tuple[int, int]:
        """(instances that applied `version` or later, instances running)."""
        return await self._store.seen(version, recent_s=3 * self.heartbeat_s)

    async def wait_seen(self, version: int, within_s: float = 1.0) -> tuple[int, int]:
        """Wait (bounded) until every running instance applied `version`; what was seen then.
        Reads again only when an instance announces it applied a version (or at the end)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            news = self._seen_news  # taken before the read: an announcement during it counts
            seen, running = await self.seen(version)
            left = deadline - loop.time()
            if seen >= running or left <= 0:
                return seen, running
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), left)

    def stats(self) -> dict[str, Any]:
        # Everything is the deployment's; totals as of the last heartbeat plus ours since.
        return self._stats_of(*self._view()) | {"version": self._mirror.version, "instance_id": self.instance_id}

"""What this instance knows of every link without asking PostgreSQL.

A link's `version` moves exactly when what its owner sees moves (a trigger bumps it and
announces `link:<salon pk>:<version>` on the notification channel). This map keeps the
latest version announced per salon, and the last poll answer per salon with the version it
was read at. A poll whose cached answer is still at the announced version, and whose
gateway re-check is not yet due, is answered from here: no database round trip.

When the listener is down, announcements may be lost, so nothing here is trusted until it
is back, and everything is forgotten when it comes back (the next poll of each salon reads
the database again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from portal.salons.ids import SalonPk, YclientsSalonId
from portal.whatsapp.link_view import Poll

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedPoll:
    salon_pk: SalonPk
    version: int
    poll: Poll
    recheck_at: float  # monotonic: when this salon's gateway state is due a look again


class LinkVersions:
    """Bounded: the least recently polled salons fall out first."""

    def __init__(self, *, trusted: Callable[[], bool], capacity: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._trusted = trusted
        self._capacity = capacity
        self._clock = clock
        self._announced: dict[SalonPk, int] = {}
        self._polls: OrderedDict[YclientsSalonId, CachedPoll] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def announced(self, rest: str) -> None:
        """A `link:` notification's payload after the kind: `<salon pk>:<version>`."""
        pk_text, _, version_text = rest.partition(":")
        if not (pk_text.isdigit() and version_text.isdigit()):
            return
        pk, version = SalonPk(int(pk_text)), int(version_text)
        if version > self._announced.get(pk, 0):
            self._announced[pk] = version
            if len(self._announced) > self._capacity:
                self._announced.pop(next(iter(self._announced)))

    def forget_all(self) -> None:
        self._announced.clear()
        self._polls.clear()

    def fresh(self, yclients_salon_id: YclientsSalonId) -> Poll | None:
        """The cached answer, if nothing changed since and no gateway look is due."""
        cached = self._polls.get(yclients_salon_id)
        if (cached is None or not self._trusted() or self._clock() >= cached.recheck_at
                or self._announced.get(cached.salon_pk, cached.version) != cached.version):
            self.misses += 1
            return None
        self._polls.move_to_end(yclients_salon_id)
        self.hits += 1
        return cached.poll

    def remember(self, yclients_salon_id: YclientsSalonId, salon_pk: SalonPk, version: int,
                 poll: Poll, recheck_in_s: float) -> None:
        if version < self._announced.get(salon_pk, 0):
            return  # already outdated by an announcement that overtook this read
        self._announced[salon_pk] = version
        self._polls[yclients_salon_id] = CachedPoll(salon_pk, version, poll, self._clock() + recheck_in_s)
        self._polls.move_to_end(yclients_salon_id)
        if len(self._polls) > self._capacity:
            self._polls.popitem(last=False)


class QrRenewals:
    """New QRs for owners looking at one about to expire, fetched off the poll's path: the poll
    answers at once with the QR it has (still live for the margin) and this instance fetches
    the next in the background, at most once per `every_s` per salon, one at a time per salon,
    `parallel` at a time in all. Kept in memory per instance, not claimed in the row: another
    instance whose owners look at the same QR may fetch it too, which costs one read."""

    def __init__(self, *, every_s: float = 1.0, parallel: int = 8, capacity: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._capacity = capacity
        self._clock = clock
        self._last: OrderedDict[SalonPk, float] = OrderedDict()
        self._running: dict[SalonPk, asyncio.Task[None]] = {}
        self._gate = asyncio.Semaphore(parallel)

    def renew(self, salon_pk: SalonPk, fetch: Callable[[], Awaitable[object]]) -> bool:
        """Start `fetch` in the background unless one runs or ran within `every_s` for this salon."""
        now = self._clock()
        last = self._last.get(salon_pk)
        if salon_pk in self._running or (last is not None and now - last < self._every_s):
            return False
        self._last[salon_pk] = now
        self._last.move_to_end(salon_pk)
        if len(self._last) > self._capacity:
            self._last.popitem(last=False)
        task = asyncio.create_task(self._fetch(fetch), name="qr-renewal")
        self._running[salon_pk] = task
        task.add_done_callback(lambda _: self._running.pop(salon_pk, None))
        return True

    async def _fetch(self, fetch: Callable[[], Awaitable[object]]) -> None:
        async with self._gate:
            try:
                await fetch()
            except Exception:  # a background task has nobody to raise to: say so, keep serving
                log.exception("QR renewal failed")

    async def aclose(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

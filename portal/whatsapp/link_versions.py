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

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portal.salons.ids import SalonPk, YclientsSalonId

if TYPE_CHECKING:
    from portal.whatsapp.linking import Poll


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

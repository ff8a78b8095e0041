"""Circuit breaker for the WhatsApp gateway's "start a session and wait for its first QR" call.

Owns: the closed -> open -> half_open -> closed rules (`Rules`, pure functions of a `Shared`
state and a time), the per-call timeout that *cancels* a hung gateway call, and the call flow
(`BreakerCalls`). Where the state lives is the subclass's business: `CircuitBreaker` keeps it
in this process (one event loop, unit tests with a fake clock); `SharedBreaker`
(shared_breaker.py) keeps it in PostgreSQL for every instance. Both run the same rules.

Outcomes raised by ``call``:
  * ``CircuitOpen`` -- rejected without calling ``fn``; ``retry_after`` says when to come back.
  * ``TimeoutError`` (== ``asyncio.TimeoutError``) -- ``fn`` exceeded ``call_timeout_s``; it was
    cancelled and the timeout was counted as a failure before re-raising.
  * anything ``fn`` raises -- counted as a failure and re-raised unchanged.
  * ``asyncio.CancelledError`` from the caller -- re-raised, NOT counted (not the gateway's fault).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_SUMMARY_MAX = 120
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")  # query strings may carry tokens


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """Raised instead of calling the gateway. ``retry_after`` is whole seconds, >= 0."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open; retry after {retry_after:.0f}s")
        self.name = name
        self.retry_after = retry_after


def summarize_error(exc: BaseException) -> str:
    """Short, log/UI-safe text: class name plus <= ~120 chars, never a whole response body."""
    safe = getattr(exc, "safe_summary", None)
    text = " ".join(str(safe if safe is not None else exc).split())
    text = _URL_QUERY.sub(r"\1?…", text)
    if len(text) > _SUMMARY_MAX:
        text = text[: _SUMMARY_MAX - 1] + "…"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


@dataclass(frozen=True)
class Shared:
    """What the breaker's decisions need; the one row every instance shares in production."""

    state: BreakerState = BreakerState.CLOSED
    forced: bool = False
    # Bumped on every transition. A call remembers the episode it started in; results
    # arriving after the episode ended cannot move the state or release a slot of the new
    # episode (which starts with no slots held).
    episode: int = 0
    opened_at: float | None = None  # on the decision clock
    opened_wall: float | None = None  # for people: epoch seconds
    consecutive_failures: int = 0
    half_open_successes: int = 0
    # Half-open trial calls in flight: (claim id, expires at on the decision clock). A claim
    # whose holder vanished (a hung or killed instance) frees itself when it expires.
    trials: tuple[tuple[str, float], ...] = ()
    last_error: str | None = None
    version: int = 0  # the store's row version (0 in memory); orders what instances see


@dataclass(frozen=True)
class Rules:
    failure_threshold: int = 5
    reset_timeout_s: float = 60.0
    call_timeout_s: float = 30.0
    success_threshold: int = 2
    # A trial's claim outlives its call by this much: the call is cancelled at call_timeout_s
    # and gives its claim back right after; only a holder that vanished meets the expiry.
    claim_grace_s: float = 1.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("thresholds must be >= 1")
        if self.reset_timeout_s < 0 or self.call_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be >= 0 and call_timeout_s > 0")

    def enter(self, s: Shared, new: BreakerState, now: float, wall: float) -> Shared:
        s = replace(s, state=new, episode=s.episode + 1, trials=(), half_open_successes=0)
        if new is BreakerState.OPEN:
            return replace(s, opened_at=now, opened_wall=wall)
        if new is BreakerState.CLOSED:
            return replace(s, consecutive_failures=0, opened_at=None, opened_wall=None)
        return s

    def open_remaining(self, s: Shared, now: float) -> float:
        return (s.opened_at or now) + self.reset_timeout_s - now

    def settle(self, s: Shared, now: float, wall: float) -> Shared:
        """Lazy: nothing wakes up when reset_timeout_s passes; whoever looks next moves it on."""
        if s.state is BreakerState.OPEN and not s.forced and self.open_remaining(s, now) <= 0:
            s = self.enter(s, BreakerState.HALF_OPEN, now, wall)
        live = tuple(t for t in s.trials if t[1] > now)
        return s if live == s.trials else replace(s, trials=live)

    def admit(self, s: Shared, now: float, claim: str) -> Shared | None:
        """The settled state with this call admitted (a trial claims a slot), or None: refused."""
        if s.state is BreakerState.OPEN:
            return None
        if s.state is BreakerState.HALF_OPEN:
            if len(s.trials) >= self.success_threshold:
                return None
            return replace(s, trials=(*s.trials, (claim, now + self.call_timeout_s + self.claim_grace_s)))
        return s

    def failed(self, s: Shared, now: float, wall: float, episode: int, summary: str) -> Shared:
        s = replace(s, last_error=summary)
        if episode != s.episode:
            return s
        s = replace(s, consecutive_failures=s.consecutive_failures + 1)
        if s.state is BreakerState.HALF_OPEN or (
            s.state is BreakerState.CLOSED and s.consecutive_failures >= self.failure_threshold
        ):
            return self.enter(s, BreakerState.OPEN, now, wall)
        return s

    def succeeded(self, s: Shared, now: float, wall: float, episode: int) -> Shared:
        if episode != s.episode:
            return s
        if s.state is BreakerState.CLOSED:
            return replace(s, consecutive_failures=0)
        if s.state is BreakerState.HALF_OPEN:
            if s.half_open_successes + 1 >= self.success_threshold:
                return self.enter(s, BreakerState.CLOSED, now, wall)
            return replace(s, half_open_successes=s.half_open_successes + 1)
        return s

    @staticmethod
    def released(s: Shared, episode: int, claim: str) -> Shared:
        if episode != s.episode:
            return s  # the new episode started with no slots held
        return replace(s, trials=tuple(t for t in s.trials if t[0] != claim))

    def reset(self, s: Shared, now: float, wall: float) -> Shared:
        """Close now (also ends force_open). Clears this episode's counters."""
        return self.enter(replace(s, forced=False), BreakerState.CLOSED, now, wall)

    def force_open(self, s: Shared, now: float, wall: float) -> Shared:
        """Maintenance switch: reject every call until reset."""
        return self.enter(replace(s, forced=True), BreakerState.OPEN, now, wall)


Change = Callable[[Shared, float, float], Shared]  # (state, now, wall) -> new state


@dataclass(frozen=True)
class Totals:
    """Calls made, failed, and refused by an open breaker."""

    calls: int = 0
    failures: int = 0
    rejections: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.calls + other.calls, self.failures + other.failures, self.rejections + other.rejections)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.calls - other.calls, self.failures - other.failures, self.rejections - other.rejections)

    def as_stats(self) -> dict[str, int]:
        return {"total_calls": self.calls, "total_failures": self.failures, "total_rejections": self.rejections}


class BreakerCalls:
    """The call flow over some place that keeps `Shared`: subclasses say how to admit a call
    and how to apply a change atomically; the rules and the timeout are the same everywhere."""

    # While half-open with every trial slot taken, callers get this as a poll hint: a slot
    # frees within call_timeout_s at worst, but usually much sooner.
    HALF_OPEN_RETRY_S = 1.0

    def __init__(self, rules: Rules, name: str) -> None:
        self.rules = rules
        self.name = name
        self.failure_threshold = rules.failure_threshold
        self.reset_timeout_s = rules.reset_timeout_s
        self.call_timeout_s = rules.call_timeout_s
        self.success_threshold = rules.success_threshold
        # This instance's own counts since it started (a subclass may share them: a counter
        # per call would be a write per call).
        self._total_calls = self._total_failures = self._total_rejections = 0

    async def _admit(self, claim: str) -> tuple[Shared, bool]:
        """The state the call was decided on, and whether it may go ahead."""
        raise NotImplementedError

    async def _change(self, change: Change) -> Shared:
        raise NotImplementedError

    def _view(self) -> tuple[Shared, float]:
        """The settled state as this instance sees it now, and the decision clock's now."""
        raise NotImplementedError

    @property
    def state(self) -> BreakerState:
        return self._view()[0].state

    def retry_after(self) -> float:
        """Seconds (rounded up to whole seconds) until a call would be admitted; 0.0 if now."""
        s, now = self._view()
        if s.state is BreakerState.OPEN:
            # Forced open has no end time; reset_timeout_s is only a "check back" hint.
            remaining = self.reset_timeout_s if s.forced else self.rules.open_remaining(s, now)
            return float(max(0, math.ceil(remaining)))
        if s.state is BreakerState.HALF_OPEN and len(s.trials) >= self.success_threshold:
            return self.HALF_OPEN_RETRY_S
        return 0.0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        claim = secrets.token_hex(8)
        decided, admitted = await self._admit(claim)
        if not admitted:
            self._total_rejections += 1
            raise CircuitOpen(self.name, self.retry_after())
        trial = decided.state is BreakerState.HALF_OPEN
        episode = decided.episode
        self._total_calls += 1
        deadline = asyncio.timeout(self.call_timeout_s)  # cancels fn, not just abandons it
        try:
            async with deadline:
                result = await fn()
        except asyncio.CancelledError:
            # Our own timeout surfaces as TimeoutError, so this is the caller going away.
            if trial:  # give the slot back; if this is lost too, the claim expires
                await asyncio.shield(self._change(lambda s, _n, _w: self.rules.released(s, episode, claim)))
            raise
        except Exception as exc:
            summary = (f"TimeoutError: no result within {self.call_timeout_s}s"
                       if deadline.expired() else summarize_error(exc))
            self._total_failures += 1
            await self._change(lambda s, now, wall: self.rules.released(
                self.rules.failed(s, now, wall, episode, summary), episode, claim))
            raise
        await self._after_success(episode, claim if trial else None)
        return result

    async def _after_success(self, episode: int, claim: str | None) -> None:
        await self._change(lambda s, now, wall: self.rules.released(
            self.rules.succeeded(s, now, wall, episode), episode, claim or ""))

    def _stats_of(self, s: Shared, now: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": s.state.value,
            "forced": s.forced,
            "consecutive_failures": s.consecutive_failures,
            "half_open_successes": s.half_open_successes,
            **self._totals().as_stats(),
            "last_error": s.last_error,
            "opened_at": s.opened_wall,
            "seconds_until_retry": self.retry_after() if s.state is BreakerState.OPEN else 0.0,
            "failure_threshold": self.failure_threshold,
            "reset_timeout_s": self.reset_timeout_s,
            "call_timeout_s": self.call_timeout_s,
            "success_threshold": self.success_threshold,
        }

    def _counted(self) -> Totals:
        """This instance's own counts since it started."""
        return Totals(self._total_calls, self._total_failures, self._total_rejections)

    def _totals(self) -> Totals:
        """The totals `stats` reports: this instance's, unless a subclass shares them."""
        return self._counted()

    def stats(self) -> dict[str, Any]:
        return self._stats_of(*self._view())


class CircuitBreaker(BreakerCalls):
    """The state in this process: one event loop, no awaits inside a decision, so no lock."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 60.0,
        call_timeout_s: float = 30.0,
        success_threshold: int = 2,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        name: str = "qrGeneration",
        on_transition: Callable[[BreakerState, BreakerState], Any] | None = None,
    ) -> None:
        super().__init__(Rules(failure_threshold, reset_timeout_s, call_timeout_s, success_threshold), name)
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_transition = on_transition
        self._s = Shared()

    def _set(self, new: Shared) -> None:
        old = self._s.state
        self._s = new
        if old is not new.state:
            notify_transition(self.name, self._on_transition, old, new.state)

    def _view(self) -> tuple[Shared, float]:
        now = self._clock()
        self._set(self.rules.settle(self._s, now, self._wall_clock()))
        return self._s, now

    async def _admit(self, claim: str) -> tuple[Shared, bool]:
        s, now = self._view()
        admitted = self.rules.admit(s, now, claim)
        if admitted is not None:
            self._set(admitted)
        return s, admitted is not None

    async def _change(self, change: Change) -> Shared:
        self._set(change(self._s, self._clock(), self._wall_clock()))
        return self._s

    def reset(self) -> None:
        """Close now (also ends force_open). Clears this episode's counters, keeps totals."""
        self._set(self.rules.reset(self._s, self._clock(), self._wall_clock()))

    def force_open(self) -> None:
        """Maintenance switch: reject every call until reset()."""
        self._set(self.rules.force_open(self._s, self._clock(), self._wall_clock()))


def notify_transition(name: str, hook: Callable[[BreakerState, BreakerState], Any] | None,
                      old: BreakerState, new: BreakerState) -> None:
    if hook is None:
        return
    try:  # a broken metrics hook must not corrupt bookkeeping mid-call
        hook(old, new)
    except Exception:
        log.exception("breaker %s: on_transition hook failed", name)

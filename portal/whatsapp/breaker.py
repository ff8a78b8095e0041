"""Circuit breaker for the WhatsApp gateway's "start a session and wait for its first QR" call.

Owns: the closed -> open -> half_open -> closed state machine, the per-call timeout that
*cancels* a hung gateway call, and the counters shown on the status page. It does not own
retries, the gateway client or persistence. One instance per process, one event loop.

Outcomes raised by ``CircuitBreaker.call``:
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
import time
from collections.abc import Awaitable, Callable
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


class CircuitBreaker:
    # While half-open with every trial slot taken, callers get this as a poll hint: a slot
    # frees within call_timeout_s at worst, but usually much sooner.
    HALF_OPEN_RETRY_S = 1.0

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
        if failure_threshold < 1 or success_threshold < 1:
            raise ValueError("thresholds must be >= 1")
        if reset_timeout_s < 0 or call_timeout_s <= 0:
            raise ValueError("reset_timeout_s must be >= 0 and call_timeout_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.call_timeout_s = call_timeout_s
        self.success_threshold = success_threshold
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_transition = on_transition

        self._state = BreakerState.CLOSED
        # Bumped on every transition. A call remembers the episode it started in; results
        # arriving after the episode ended still count in the totals but cannot move the state
        # or release a slot of the new episode (which starts with zero slots held).
        self._episode = 0
        self._forced = False
        self._opened_mono: float | None = None
        self._opened_wall: float | None = None
        self._consecutive_failures = self._half_open_successes = self._trials_in_flight = 0
        self._total_calls = self._total_failures = self._total_rejections = 0
        self._last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        # Lazy: nothing wakes up when reset_timeout_s passes; whoever looks next moves it on.
        if self._state is BreakerState.OPEN and not self._forced and self._open_remaining() <= 0:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def _open_remaining(self) -> float:
        assert self._opened_mono is not None
        return self._opened_mono + self.reset_timeout_s - self._clock()

    def retry_after(self) -> float:
        """Seconds (rounded up to whole seconds) until a call would be admitted; 0.0 if now."""
        state = self.state
        if state is BreakerState.OPEN:
            # Forced open has no end time; reset_timeout_s is only a "check back" hint.
            remaining = self.reset_timeout_s if self._forced else self._open_remaining()
            return float(max(0, math.ceil(remaining)))
        if state is BreakerState.HALF_OPEN and self._trials_in_flight >= self.success_threshold:
            return self.HALF_OPEN_RETRY_S
        return 0.0

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._episode += 1
        self._trials_in_flight = 0
        self._half_open_successes = 0
        if new is BreakerState.OPEN:
            self._opened_mono, self._opened_wall = self._clock(), self._wall_clock()
        elif new is BreakerState.CLOSED:
            self._consecutive_failures = 0
            self._opened_mono = self._opened_wall = None
        if old is not new and self._on_transition is not None:
            try:  # a broken metrics hook must not corrupt bookkeeping mid-call
                self._on_transition(old, new)
            except Exception:
                log.exception("breaker %s: on_transition hook failed", self.name)

    def reset(self) -> None:
        """Close now (also ends force_open). Clears this episode's counters, keeps totals."""
        self._forced = False
        self._transition(BreakerState.CLOSED)

    def force_open(self) -> None:
        """Maintenance switch: reject every call until reset()."""
        self._forced = True
        self._transition(BreakerState.OPEN)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        # Single event loop, no threads: there is no await between reading the state, checking
        # the trial slots and taking one, so no other task can interleave and no lock is needed.
        state = self.state
        if state is BreakerState.OPEN or (
            state is BreakerState.HALF_OPEN and self._trials_in_flight >= self.success_threshold
        ):
            self._total_rejections += 1
            raise CircuitOpen(self.name, self.retry_after())
        trial = state is BreakerState.HALF_OPEN
        if trial:
            self._trials_in_flight += 1
        episode = self._episode
        self._total_calls += 1
        deadline = asyncio.timeout(self.call_timeout_s)  # cancels fn, not just abandons it
        try:
            async with deadline:
                result = await fn()
        except asyncio.CancelledError:
            # Our own timeout surfaces as TimeoutError, so this is the caller going away.
            raise
        except Exception as exc:
            if deadline.expired():
                summary = f"TimeoutError: no result within {self.call_timeout_s}s"
            else:
                summary = summarize_error(exc)
            self._record_failure(episode, summary)
            raise
        else:
            self._record_success(episode)
            return result
        finally:
            # Every exit path gives the slot back unless the episode already ended (then the
            # new episode started at zero), so half-open can never be stranded with slots held.
            if trial and episode == self._episode:
                self._trials_in_flight -= 1

    def _record_failure(self, episode: int, summary: str) -> None:
        self._total_failures += 1
        self._last_error = summary
        if episode != self._episode:
            return
        self._consecutive_failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED
            and self._consecutive_failures >= self.failure_threshold
        ):
            self._transition(BreakerState.OPEN)

    def _record_success(self, episode: int) -> None:
        if episode != self._episode:
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
        elif self._state is BreakerState.HALF_OPEN:
            self._half_open_successes += 1
            if self._half_open_successes >= self.success_threshold:
                self._transition(BreakerState.CLOSED)

    def stats(self) -> dict[str, Any]:
        state = self.state
        return {
            "name": self.name,
            "state": state.value,
            "forced": self._forced,
            "consecutive_failures": self._consecutive_failures,
            "half_open_successes": self._half_open_successes,
            "total_calls": self._total_calls,
            "total_failures": self._total_failures,
            "total_rejections": self._total_rejections,
            "last_error": self._last_error,
            "opened_at": self._opened_wall,
            "seconds_until_retry": self.retry_after() if state is BreakerState.OPEN else 0.0,
            "failure_threshold": self.failure_threshold,
            "reset_timeout_s": self.reset_timeout_s,
            "call_timeout_s": self.call_timeout_s,
            "success_threshold": self.success_threshold,
        }

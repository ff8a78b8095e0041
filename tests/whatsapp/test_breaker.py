"""CircuitBreaker: state machine driven by a fake clock (no sleeps for time transitions)."""

import asyncio

import pytest

from portal.whatsapp.breaker import BreakerState, CircuitBreaker, CircuitOpen, summarize_error
from tests.helpers.clock import FakeClock


class Boom(Exception):
    pass


class Gateway:
    """Counts invocations; each behaviour is an async zero-arg callable for breaker.call."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def ok(self) -> str:
        self.calls += 1
        return "qr-data"

    async def fail(self) -> str:
        self.calls += 1
        raise Boom("gateway said no")

    async def wait_for_release(self) -> str:
        self.calls += 1
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return "qr-data"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def transitions() -> list:
    return []


@pytest.fixture
def breaker(clock, wall, transitions) -> CircuitBreaker:
    return CircuitBreaker(
        clock=clock, wall_clock=wall, on_transition=lambda a, b: transitions.append((a, b))
    )


@pytest.fixture
def gw() -> Gateway:
    return Gateway()


async def fail_times(breaker: CircuitBreaker, gw: Gateway, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await breaker.call(gw.fail)


async def open_then_half_open(breaker, gw, clock) -> None:
    await fail_times(breaker, gw, 5)
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN


async def until(predicate) -> None:
    # Yield to the loop until started tasks reach their await point (bounded, no timing).
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


async def test_opens_after_threshold_and_rejects_without_invoking(breaker, gw):
    await fail_times(breaker, gw, 4)
    assert breaker.state is BreakerState.CLOSED
    await fail_times(breaker, gw, 1)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as info:
        await breaker.call(gw.ok)
    assert gw.calls == 5
    assert info.value.retry_after == 60.0
    assert breaker.stats()["total_rejections"] == 1


async def test_fn_exception_is_reraised_unchanged(breaker):
    err = Boom("exact object")

    async def fn():
        raise err

    with pytest.raises(Boom) as info:
        await breaker.call(fn)
    assert info.value is err
    assert await breaker.call(Gateway().ok) == "qr-data"


async def test_retry_after_counts_down_with_clock(breaker, gw, clock):
    await fail_times(breaker, gw, 5)
    assert breaker.retry_after() == 60.0
    clock.advance(10)
    assert breaker.retry_after() == 50.0
    clock.advance(49.5)  # 0.5 s left: rounded up, never 0 while still open
    assert breaker.retry_after() == 1.0
    with pytest.raises(CircuitOpen) as info:
        await breaker.call(gw.ok)
    assert info.value.retry_after == 1.0
    clock.advance(0.5)
    assert breaker.retry_after() == 0.0


async def test_half_open_after_reset_timeout(breaker, gw, clock):
    await fail_times(breaker, gw, 5)
    clock.advance(59.9)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.call(gw.ok) == "qr-data"
    assert gw.calls == 6


async def test_closes_after_two_successful_trials(breaker, gw, clock, transitions):
    await open_then_half_open(breaker, gw, clock)
    await breaker.call(gw.ok)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.stats()["half_open_successes"] == 1
    await breaker.call(gw.ok)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats()["opened_at"] is None
    S = BreakerState
    assert transitions == [(S.CLOSED, S.OPEN), (S.OPEN, S.HALF_OPEN), (S.HALF_OPEN, S.CLOSED)]


async def test_failure_in_half_open_reopens_from_now(breaker, gw, clock, wall):
    await fail_times(breaker, gw, 5)
    first_opened_at = breaker.stats()["opened_at"]
    clock.advance(60)
    wall.advance(60)
    await breaker.call(gw.ok)  # one success is not enough to close
    await fail_times(breaker, gw, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.stats()["opened_at"] == first_opened_at + 60
    assert breaker.retry_after() == 60.0


async def test_half_open_admits_only_two_concurrent_trials(breaker, gw, clock):
    await open_then_half_open(breaker, gw, clock)
    trials = [asyncio.create_task(breaker.call(gw.wait_for_release)) for _ in range(2)]
    await until(lambda: gw.started == 2)
    before = gw.calls
    with pytest.raises(CircuitOpen) as info:
        await breaker.call(gw.ok)
    assert gw.calls == before
    assert info.value.retry_after == CircuitBreaker.HALF_OPEN_RETRY_S
    gw.release.set()
    assert await asyncio.gather(*trials) == ["qr-data", "qr-data"]
    assert breaker.state is BreakerState.CLOSED


async def test_hung_trials_are_cancelled_and_reopen_without_stranding_slots(gw, clock):
    breaker = CircuitBreaker(clock=clock, call_timeout_s=0.05)
    await open_then_half_open(breaker, gw, clock)
    trials = [asyncio.create_task(breaker.call(gw.wait_for_release)) for _ in range(2)]
    results = await asyncio.gather(*trials, return_exceptions=True)
    assert all(isinstance(r, TimeoutError) for r in results)
    assert gw.cancelled == 2  # cancelled, not merely abandoned
    assert breaker.state is BreakerState.OPEN
    stats = breaker.stats()
    assert stats["last_error"] == "TimeoutError: no result within 0.05s"
    assert stats["total_failures"] == 7
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    gw.started = 0
    trials = [asyncio.create_task(breaker.call(gw.wait_for_release)) for _ in range(2)]
    await until(lambda: gw.started == 2)  # both slots free again
    with pytest.raises(CircuitOpen):  # ...and no more than two
        await breaker.call(gw.ok)
    gw.release.set()
    await asyncio.gather(*trials)
    assert breaker.state is BreakerState.CLOSED


async def test_timeout_in_closed_state_counts_as_failure(gw, clock):
    breaker = CircuitBreaker(clock=clock, call_timeout_s=0.05, failure_threshold=1)
    with pytest.raises(TimeoutError):
        await breaker.call(gw.wait_for_release)
    assert gw.cancelled == 1
    assert breaker.state is BreakerState.OPEN


async def test_caller_cancellation_is_not_a_failure(breaker, gw):
    await fail_times(breaker, gw, 4)
    task = asyncio.create_task(breaker.call(gw.wait_for_release))
    await until(lambda: gw.started == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = breaker.stats()
    assert (stats["consecutive_failures"], stats["total_failures"]) == (4, 4)
    assert stats["state"] == "closed"


async def test_caller_cancellation_releases_half_open_slots(breaker, gw, clock):
    await open_then_half_open(breaker, gw, clock)
    first = [asyncio.create_task(breaker.call(gw.wait_for_release)) for _ in range(2)]
    await until(lambda: gw.started == 2)
    for task in first:
        task.cancel()
    await asyncio.gather(*first, return_exceptions=True)
    assert breaker.state is BreakerState.HALF_OPEN
    second = [asyncio.create_task(breaker.call(gw.wait_for_release)) for _ in range(2)]
    await until(lambda: gw.started == 4)
    with pytest.raises(CircuitOpen):
        await breaker.call(gw.ok)
    gw.release.set()
    await asyncio.gather(*second)
    assert breaker.state is BreakerState.CLOSED


async def test_success_in_closed_resets_consecutive_failures(breaker, gw):
    await fail_times(breaker, gw, 4)
    await breaker.call(gw.ok)
    assert breaker.stats()["consecutive_failures"] == 0
    await fail_times(breaker, gw, 4)
    assert breaker.state is BreakerState.CLOSED
    await fail_times(breaker, gw, 1)
    assert breaker.state is BreakerState.OPEN


async def test_stats_content(breaker, gw, clock, wall):
    assert breaker.stats() == {
        "name": "qrGeneration", "state": "closed", "forced": False,
        "consecutive_failures": 0, "half_open_successes": 0,
        "total_calls": 0, "total_failures": 0, "total_rejections": 0,
        "last_error": None, "opened_at": None, "seconds_until_retry": 0.0,
        "failure_threshold": 5, "reset_timeout_s": 60.0,
        "call_timeout_s": 30.0, "success_threshold": 2,
    }  # fmt: skip
    await breaker.call(gw.ok)
    await fail_times(breaker, gw, 5)
    with pytest.raises(CircuitOpen):
        await breaker.call(gw.ok)
    clock.advance(15)
    stats = breaker.stats()
    assert stats["state"] == "open"
    assert (stats["total_calls"], stats["total_failures"], stats["total_rejections"]) == (6, 5, 1)
    assert stats["consecutive_failures"] == 5
    assert stats["last_error"] == "Boom: gateway said no"
    assert stats["opened_at"] == wall.now
    assert stats["seconds_until_retry"] == 45.0


async def test_last_error_is_short_and_prefers_safe_summary(breaker):
    body = "<html>" + "x" * 5000 + "</html>"

    async def raw():
        raise Boom(body)

    with pytest.raises(Boom):
        await breaker.call(raw)
    last = breaker.stats()["last_error"]
    assert last.startswith("Boom: <html>xxx") and last.endswith("…")
    assert len(last) <= len("Boom: ") + 120

    class GatewayError(Exception):
        safe_summary = "HTTP 502 from gateway"

    async def with_summary():
        raise GatewayError(body)

    with pytest.raises(GatewayError):
        await breaker.call(with_summary)
    assert breaker.stats()["last_error"] == "GatewayError: HTTP 502 from gateway"


def test_summary_strips_url_query_and_newlines():
    exc = Boom("POST https://gw.example/sessions?token=s3cret failed\nbody: {...}")
    assert summarize_error(exc) == "Boom: POST https://gw.example/sessions?… failed body: {...}"
    assert summarize_error(Boom()) == "Boom"


async def test_force_open_holds_until_reset(breaker, gw, clock):
    await fail_times(breaker, gw, 3)
    breaker.force_open()
    clock.advance(10_000)  # reset timeout long gone, still open
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await breaker.call(gw.ok)
    assert gw.calls == 3
    assert breaker.stats()["forced"] is True
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.stats()["forced"] is False
    assert await breaker.call(gw.ok) == "qr-data"
    await fail_times(breaker, gw, 5)  # a normal open afterwards times out as usual
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN


async def test_reset_clears_episode_counters_but_keeps_totals(breaker, gw, clock):
    await open_then_half_open(breaker, gw, clock)
    await breaker.call(gw.ok)
    breaker.reset()
    stats = breaker.stats()
    assert stats["state"] == "closed"
    assert (stats["consecutive_failures"], stats["half_open_successes"]) == (0, 0)
    assert stats["opened_at"] is None and stats["forced"] is False
    assert (stats["total_calls"], stats["total_failures"]) == (6, 5)
    # a fresh episode: it takes the full threshold again to open
    await fail_times(breaker, gw, 4)
    assert breaker.state is BreakerState.CLOSED


async def test_late_result_from_previous_episode_does_not_move_state(breaker, gw, clock):
    slow = asyncio.create_task(breaker.call(gw.wait_for_release))  # started while closed
    await until(lambda: gw.started == 1)
    await fail_times(breaker, gw, 5)
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    gw.release.set()
    await slow  # a success from the closed episode is not a half-open trial success
    assert breaker.stats()["half_open_successes"] == 0
    assert breaker.state is BreakerState.HALF_OPEN


async def test_late_failure_from_previous_episode_does_not_reopen(breaker, gw, clock):
    gate = asyncio.Event()

    async def slow_fail():
        await gate.wait()
        raise Boom("late")

    slow = asyncio.create_task(breaker.call(slow_fail))  # started while closed
    await asyncio.sleep(0)
    await fail_times(breaker, gw, 5)
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    gate.set()
    with pytest.raises(Boom):
        await slow
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.stats()["total_failures"] == 6  # still counted in the totals


async def test_stale_trial_cannot_free_a_slot_of_a_later_half_open(breaker, gw, clock):
    await open_then_half_open(breaker, gw, clock)
    stale = asyncio.create_task(breaker.call(gw.wait_for_release))
    await until(lambda: gw.started == 1)
    await fail_times(breaker, gw, 1)  # the other trial fails: re-open, new episode
    clock.advance(60)
    assert breaker.state is BreakerState.HALF_OPEN
    gate = asyncio.Event()

    async def hold():
        await gate.wait()
        return "qr-data"

    fresh = [asyncio.create_task(breaker.call(hold)) for _ in range(2)]
    await asyncio.sleep(0)
    gw.release.set()
    await stale  # finishes during the new episode; must not give back a slot it never took
    with pytest.raises(CircuitOpen):
        await breaker.call(gw.ok)
    gate.set()
    await asyncio.gather(*fresh)
    assert breaker.state is BreakerState.CLOSED


def test_rejects_nonsense_config():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(call_timeout_s=0)

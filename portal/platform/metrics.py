"""Prometheus metrics of one portal app, and the database pool's health.

Owns:
  * ``PortalMetrics`` -- every ``portal_*`` metric, registered on a ``CollectorRegistry`` the
    instance creates for itself, and ``render()`` for the ``/metrics`` endpoint. Nothing is
    registered on prometheus_client's global ``REGISTRY`` and nothing is kept at module level,
    so two apps in one process (tests, blue/green in one worker) never share a value.
  * ``PoolGauge.sample(pool)`` -- one reading of an asyncpg pool (size, in use, idle, max,
    waiting acquirers).
  * ``PoolHealth`` -- remembers recent samples and turns them into warnings for the health
    endpoint ("database pool had waiters", "database pool above 80% use").

It does not own the ``/metrics`` route, its access control, the breaker or the pool: the app
wires those in and calls the recording methods.

Label values must come from small fixed sets (Outcome.code, breaker names, error kinds,
webhook sources, rate-limit scopes): every distinct value is a new time series.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypedDict

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Gauge encoding of the breaker state: ordered by "how much is refused", so max() over
# instances and "> 0" alerts mean what they read as. Keyed by the state's string value: the
# platform does not import the breaker (a subsystem), and the breaker's StrEnum members are
# equal to and hash like these strings, so its callbacks pass them in unchanged.
BREAKER_STATE_VALUES: dict[str, int] = {
    "closed": 0,
    "half_open": 1,
    "open": 2,
}

# Both histograms time calls bounded by outgoing timeouts of up to ~30 s (partner API, gateway
# breaker), so the buckets reach 60 s and are fine-grained below 1 s where healthy calls land.
_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class PoolSample(TypedDict):
    size: int      # open connections
    in_use: int    # open connections handed out to callers
    idle: int      # open connections waiting in the pool
    max: int       # max_size the pool was created with
    waiting: int   # callers blocked in pool.acquire() because no connection was free


class PoolGauge:
    """Reads an asyncpg pool. Stateless: ``PoolGauge.sample(pool)``."""

    @staticmethod
    def waiting(pool: Any) -> int:
        """Number of callers blocked in ``pool.acquire()``.

        asyncpg has no public API for this. It is read from asyncpg internals: ``Pool._queue``
        is an ``asyncio.LifoQueue`` of connection holders and every blocked ``acquire()`` is a
        future in that queue's ``_getters``. Every step is guarded with getattr, so if a
        future asyncpg or Python renames them this returns 0 instead of failing the scrape
        or the health check (the other numbers stay right).
        """
        queue = getattr(pool, "_queue", None)  # None before the pool is initialised
        getters = getattr(queue, "_getters", None)
        if not getters:
            return 0
        try:
            # A getter is removed when its waiter is cancelled and popped when woken, but a
            # woken one can stay until its task runs; done() futures are no longer waiting.
            return sum(1 for getter in list(getters) if not getter.done())
        except Exception:  # defensive: an internal we do not control changed shape
            return 0

    @staticmethod
    def sample(pool: Any) -> PoolSample:
        size = pool.get_size()
        idle = pool.get_idle_size()
        return PoolSample(
            size=size,
            # get_size() counts connected holders and get_idle_size() the connected ones not
            # handed out, so the difference is what callers hold right now.
            in_use=max(0, size - idle),
            idle=idle,
            max=pool.get_max_size(),
            waiting=PoolGauge.waiting(pool),
        )


class PoolHealth:
    """Turns pool samples into health warnings.

    ``observe(sample)`` records one sample; ``warnings()`` reports and is "the check":
      * waiters -- some observed sample since the previous ``warnings()`` call had callers
        blocked in ``acquire()``; this flag is cleared by ``warnings()``.
      * high use -- the last ``window`` samples (all of them, and at least ``window`` seen)
        had ``in_use / max`` above ``high_use``. One busy moment is normal; sustained use
        near the cap means the next burst will queue.
    One instance per app (it holds state); not shared between apps. Several health pollers
    share the "since the last check" flag: the first one to check after a wait sees it.
    """

    def __init__(self, *, window: int = 3, high_use: float = 0.8) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if not 0 < high_use <= 1:
            raise ValueError("high_use must be in (0, 1]")
        self.window = window
        self.high_use = high_use
        self._recent_use: deque[float] = deque(maxlen=window)
        self._had_waiters = False

    def observe(self, sample: PoolSample) -> None:
        if sample["waiting"] > 0:
            self._had_waiters = True
        cap = sample["max"]
        self._recent_use.append(sample["in_use"] / cap if cap > 0 else 0.0)

    def warnings(self) -> list[str]:
        found: list[str] = []
        if self._had_waiters:
            found.append("database pool had waiters")
        if len(self._recent_use) == self.window and min(self._recent_use) > self.high_use:
            found.append(f"database pool above {self.high_use:.0%} use")
        self._had_waiters = False
        return found


PoolSource = Callable[[], Any]  # returns the asyncpg pool, or None while there is none


class _PoolCollector(Collector):
    """Reads the pool when Prometheus scrapes, so the gauges are never stale and no
    background task is needed. Registered on one PortalMetrics' own registry."""

    _FAMILIES: tuple[tuple[str, str, Literal["size", "in_use", "idle", "waiting", "max"]], ...] = (
        ("portal_db_pool_size", "Open connections in the database pool.", "size"),
        ("portal_db_pool_in_use", "Pool connections handed out to callers.", "in_use"),
        ("portal_db_pool_idle", "Open pool connections not handed out.", "idle"),
        ("portal_db_pool_waiting",
         "Callers blocked waiting for a pool connection (asyncpg internals).", "waiting"),
        ("portal_db_pool_max", "max_size of the database pool.", "max"),
    )

    def __init__(self, owner: PortalMetrics) -> None:
        self._owner = owner

    def describe(self) -> Iterable[Metric]:
        # Without describe() the registry would call collect() at registration, i.e. read a
        # pool that may not exist yet.
        return [GaugeMetricFamily(name, doc) for name, doc, _ in self._FAMILIES]

    def collect(self) -> Iterable[Metric]:
        source, health = self._owner._pool_source, self._owner._pool_health
        if source is None:
            return []
        try:
            pool = source()
            if pool is None:
                return []
            sample = PoolGauge.sample(pool)
        except Exception:
            # A scrape must still return the other metrics; a missing pool series is the
            # signal (and the log says why).
            log.exception("metrics: reading the database pool failed")
            return []
        if health is not None:
            health.observe(sample)  # scrapes add samples between health checks
        families = []
        for name, doc, key in self._FAMILIES:
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], sample[key])
            families.append(family)
        return families


class PortalMetrics:
    """All ``portal_*`` metrics of one app, on a registry of its own.

    Create one per app (e.g. in ``create_app``) and keep it on the app/runtime. Recording
    methods are cheap and synchronous; call them from the event loop or any thread.
    """

    def __init__(self, *, pool_source: PoolSource | None = None,
                 pool_health: PoolHealth | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # prometheus_client appends "_total" to counters; names here are without it.
        self.activations = Counter(
            "portal_activations", "Activation attempts by outcome (Outcome.code).",
            ["outcome"], registry=r)
        self.activation_duration = Histogram(
            "portal_activation_duration_seconds", "Time to run one activation, any outcome.",
            buckets=_SECONDS_BUCKETS, registry=r)
        self.breaker_state = Gauge(
            "portal_breaker_state", "Circuit breaker state: 0 closed, 1 half_open, 2 open.",
            ["breaker"], registry=r)
        self.breaker_transitions = Counter(
            "portal_breaker_transitions", "Circuit breaker state changes.",
            ["breaker", "from_state", "to_state"], registry=r)
        self.qr_generation = Histogram(
            "portal_qr_generation_seconds",
            "Time to start a WhatsApp session and get its first QR.",
            buckets=_SECONDS_BUCKETS, registry=r)
        self.gateway_errors = Counter(
            "portal_gateway_errors", "WhatsApp gateway errors by kind.", ["kind"], registry=r)
        self.webhook_deliveries = Counter(
            "portal_webhook_deliveries", "Incoming webhook deliveries by source and outcome.",
            ["source", "outcome"], registry=r)
        self.rate_limit_rejections = Counter(
            "portal_rate_limit_rejections", "Requests refused by a rate limit, by scope.",
            ["scope"], registry=r)
        self._pool_source = pool_source
        self._pool_health = pool_health
        r.register(_PoolCollector(self))

    # -- recording ---------------------------------------------------------------------

    def activation(self, outcome: str, seconds: float | None = None) -> None:
        """One finished activation: ``outcome`` is its ``Outcome.code``."""
        self.activations.labels(outcome=outcome).inc()
        if seconds is not None:
            self.activation_duration.observe(seconds)

    def qr_generated(self, seconds: float) -> None:
        self.qr_generation.observe(seconds)

    def gateway_error(self, kind: str) -> None:
        self.gateway_errors.labels(kind=kind).inc()

    def webhook_delivery(self, source: str, outcome: str) -> None:
        self.webhook_deliveries.labels(source=source, outcome=outcome).inc()

    def rate_limit_rejection(self, scope: str) -> None:
        self.rate_limit_rejections.labels(scope=scope).inc()

    def breaker_transition(
        self, name: str, *, initial: str = "closed",
    ) -> Callable[[str, str], None]:
        """A callback for ``CircuitBreaker(on_transition=...)`` that keeps
        ``portal_breaker_state{breaker=name}`` and ``portal_breaker_transitions_total`` up to date.

        States are the breaker's string values ("closed", "half_open", "open"). The breaker
        only reports changes, so the gauge is set to ``initial`` (a new breaker is closed)
        here; otherwise it would have no series until the first failure streak.
        """
        state = self.breaker_state.labels(breaker=name)
        state.set(BREAKER_STATE_VALUES[str(initial)])

        def on_transition(old: str, new: str) -> None:
            # str(): a StrEnum member's str() is its value; a plain string stays itself.
            old, new = str(old), str(new)
            state.set(BREAKER_STATE_VALUES[new])
            self.breaker_transitions.labels(breaker=name, from_state=old, to_state=new).inc()

        return on_transition

    def set_pool_source(self, source: PoolSource | None,
                        health: PoolHealth | None = None) -> None:
        """Where scrapes read the pool from (the pool usually exists only inside the
        lifespan, after this object was built). ``source`` returns the pool or None. With
        ``health``, every scrape also feeds it a sample."""
        self._pool_source = source
        self._pool_health = health

    # -- exposition --------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """Body and Content-Type for the ``/metrics`` response. Reads the pool, so call it
        on the event loop thread that owns the pool."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

"""Rate limits: how many requests a client, a user name, a salon or a webhook source may make.

Owns: parsing the configured limit strings (one per scope: "admin", "login_client",
"api_key_client", "login_user", "login_user_client", "owner", "webhook_whatsapp", "webhook_yclients",
"landing"), counting hits in a moving window, the choice of where counts live, the fall-back to
in-memory counting while that place is unreachable and the periodic retry of it, and the HTTP
headers of a decision (``Retry-After`` and the IETF draft ``RateLimit`` / ``RateLimit-Policy``
headers).

Where counts live: a configured limit must hold across every worker and every instance, so the
counts are shared -- in Redis when ``REDIS_URL`` is set (the `limits` library's moving window),
otherwise in PostgreSQL (``rate_limit_store``), which every portal has. Memory alone (per
process) is only for a ``RateLimits`` built without either, as unit tests do.

It does not own the routes, the 429 page, the health endpoint (which reads
``RateLimits.degraded`` and ``RateLimits.backend``) or the settings (the lead maps
``ADMIN_RATE_LIMIT`` & co. onto scopes). One ``RateLimits`` per process, one event loop.

Keys: callers pass a client address (``client_key``), a salon id, a webhook source, or a hash of
a user name (``name_key``). Never a secret (password, token, API key) and never personal data in
clear: keys end up in Redis or PostgreSQL, where anyone with access can read them.

Time: Redis and memory stamp hits with wall-clock time (``time.time()``), PostgreSQL with its own
clock, so windows and ``Decision.reset_after`` are wall-clock. The injected ``clock`` only
schedules the retry of an unreachable shared store.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import coredis
import limits
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter
from starlette.requests import Request

from portal.platform.database import Pool
from portal.web.rate_limit_store import RateLimitStore

log = logging.getLogger(__name__)

BACKEND_MEMORY = "memory"
BACKEND_REDIS = "redis"
BACKEND_POSTGRESQL = "postgresql"


def fallback_backend(shared: str) -> str:
    """The backend's name while the shared store ``shared`` is unreachable."""
    return f"memory ({shared} unreachable)"


@dataclass(frozen=True)
class Decision:
    """The answer to one counted request.

    ``remaining`` is what is left in the window after this request (0 when refused);
    ``reset_after`` is whole seconds until the window frees a slot (>= 1 when refused).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    window_s: int

    def headers(self) -> dict[str, str]:
        """IETF draft (draft-ietf-httpapi-ratelimit-headers) headers, plus Retry-After when refused.

        Sent on allowed answers too, so well-behaved clients can slow down before a 429.
        """
        headers = {
            "RateLimit-Policy": f"{self.limit};w={self.window_s}",
            "RateLimit": f"limit={self.limit}, remaining={self.remaining}, reset={self.reset_after}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers


def _parse_limit(scope: str, text: str) -> limits.RateLimitItem:
    try:
        items = limits.parse_many(text)
    except ValueError as exc:
        raise ValueError(f"rate limit for {scope!r}: {exc}") from None
    # One limit per scope keeps the headers honest: RateLimit-Policy describes a single quota.
    if len(items) != 1:
        raise ValueError(f"rate limit for {scope!r}: give exactly one limit, got {text!r}")
    item = items[0]
    if item.amount < 1:
        raise ValueError(f"rate limit for {scope!r}: the amount must be at least 1, got {text!r}")
    return item


def _limits_uri(redis_url: str) -> str:
    """The `limits` storage URI for a REDIS_URL (redis://, rediss:// or unix://)."""
    if redis_url.startswith(("redis://", "rediss://")):
        return "async+" + redis_url
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")


class _SharedCounts(Protocol):
    """Where counts shared by every worker and instance live."""

    name: str

    async def count(self, item: limits.RateLimitItem, scope: str, key: str, *, count: bool) -> Decision: ...

    async def aclose(self) -> None: ...


class _RedisCounts:
    name = BACKEND_REDIS

    def __init__(self, redis_url: str, *, timeout_s: float, key_prefix: str) -> None:
        uri = _limits_uri(redis_url)
        # Our own pool: bounded connect/read timeouts (a black-holed Redis must not hang
        # requests) and something we can close in aclose().
        self._pool = coredis.ConnectionPool.from_url(redis_url, connect_timeout=timeout_s, stream_timeout=timeout_s)
        storage = RedisStorage(uri, key_prefix=key_prefix,
                               connection_pool=self._pool)  # type: ignore[arg-type]  # limits types its options as scalars
        self._limiter = MovingWindowRateLimiter(storage)

    async def count(self, item: limits.RateLimitItem, scope: str, key: str, *, count: bool) -> Decision:
        return await _count(self._limiter, item, scope, key, count=count)

    async def aclose(self) -> None:
        self._pool.disconnect()


class _PostgresCounts:
    name = BACKEND_POSTGRESQL

    def __init__(self, pool: Pool, *, clock: Callable[[], float], forget_every_s: float,
                 longest_window_s: float) -> None:
        self._store = RateLimitStore(pool)
        self._clock = clock
        self._forget_every_s = forget_every_s
        self._longest_window_s = longest_window_s
        self._forget_at = clock() + forget_every_s

    async def count(self, item: limits.RateLimitItem, scope: str, key: str, *, count: bool) -> Decision:
        amount, window_s = item.amount, int(item.get_expiry())
        store_call = self._store.hit if count else self._store.peek
        window = await store_call(scope, key, amount=amount, window_s=window_s)
        if count and self._clock() >= self._forget_at:
            # Rows of keys nobody has hit for a whole window hold nothing: one instance-wide
            # delete now and then keeps the table as small as the set of active clients.
            self._forget_at = self._clock() + self._forget_every_s
            await self._store.forget_idle(self._longest_window_s)
        reset_after = max(0, math.ceil(window.frees_in_s))
        if window.allowed:
            return Decision(allowed=True, limit=amount, remaining=max(0, amount - window.used),
                            reset_after=reset_after, window_s=window_s)
        return Decision(allowed=False, limit=amount, remaining=0, reset_after=max(1, reset_after), window_s=window_s)

    async def aclose(self) -> None:
        return None


class RateLimits:
    """Counts hits per (scope, key) and answers with a ``Decision``.

    With ``redis_url`` the counts live in Redis, else with ``pool`` in PostgreSQL: either way
    shared by every worker and instance. When the shared store fails (refused, timed out, any
    error), the hit is counted in this process's memory instead: requests are still limited --
    per process, so looser -- and never fail because of the store. ``degraded`` stays True
    until the store answers again; it is retried at most once every ``retry_shared_after_s``
    seconds of ``clock`` so a dead store costs one timeout per period, not one per request.
    """

    def __init__(
        self,
        *,
        redis_url: str | None,
        limits: Mapping[str, str],
        pool: Pool | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_shared_after_s: float = 30.0,
        redis_timeout_s: float = 1.0,
        database_timeout_s: float = 5.0,
        key_prefix: str = "portal-rate-limits",
    ) -> None:
        # (`limits` here is the mapping, shadowing the library's module name in this method.)
        self._items = {scope: _parse_limit(scope, text) for scope, text in limits.items()}
        self._clock = clock
        self._retry_shared_after_s = retry_shared_after_s
        self._memory = MemoryStorage()
        self._memory_limiter = MovingWindowRateLimiter(self._memory)
        self._shared: _SharedCounts | None = None
        if redis_url:
            self._shared = _RedisCounts(redis_url, timeout_s=redis_timeout_s, key_prefix=key_prefix)
            # Belt and braces over the pool's own timeouts (e.g. waiting on the pool).
            self._shared_timeout_s = 2 * redis_timeout_s
        elif pool is not None:
            longest = max((item.get_expiry() for item in self._items.values()), default=60)
            self._shared = _PostgresCounts(pool, clock=clock, forget_every_s=300.0, longest_window_s=longest)
            # Generous: under load a request waits for a pool connection anyway, and falling
            # back to per-process counts should mean the database is gone, not merely busy.
            self._shared_timeout_s = database_timeout_s
        self._shared_down = False
        self._retry_shared_at = 0.0

    @property
    def backend(self) -> str:
        """Where counts live now: "redis", "postgresql", "memory", or "memory (<store> unreachable)"."""
        if self._shared is None:
            return BACKEND_MEMORY
        return fallback_backend(self._shared.name) if self._shared_down else self._shared.name

    @property
    def shared(self) -> bool:
        """True while counts are shared by every worker and instance."""
        return self._shared is not None and not self._shared_down

    @property
    def degraded(self) -> bool:
        """True while a configured shared store is unreachable (counts are per process meanwhile)."""
        return self._shared is not None and self._shared_down

    async def hit(self, scope: str, key: str) -> Decision:
        """Count one request for (scope, key). Raises ValueError only for an unknown scope."""
        return await self._decide(scope, key, count=True)

    async def peek(self, scope: str, key: str) -> Decision:
        """Would one more request for (scope, key) be allowed? Counts nothing: for limits that
        count failures only, checked before the attempt and hit after it failed."""
        return await self._decide(scope, key, count=False)

    async def _decide(self, scope: str, key: str, *, count: bool) -> Decision:
        try:
            item = self._items[scope]
        except KeyError:
            raise ValueError(f"no rate limit configured for scope {scope!r}") from None
        if self._shared is not None and self._should_try_shared():
            try:
                async with asyncio.timeout(self._shared_timeout_s):
                    decision = await self._shared.count(item, scope, key, count=count)
            except Exception as exc:  # any store trouble: count in memory, never fail the request
                self._shared_failed(self._shared.name, exc)
            else:
                self._shared_answered(self._shared.name)
                return decision
        return await _count(self._memory_limiter, item, scope, key, count=count)

    def _should_try_shared(self) -> bool:
        if not self._shared_down:
            return True
        now = self._clock()
        if now < self._retry_shared_at:
            return False
        # Push the next retry out before awaiting, so concurrent requests keep using memory
        # while this one probes the store instead of all waiting on the same timeout.
        self._retry_shared_at = now + self._retry_shared_after_s
        return True

    def _shared_failed(self, name: str, exc: Exception) -> None:
        if not self._shared_down:
            # Once per outage, not per request. The URL is not logged: it may hold a password.
            log.warning(
                "%s for rate limits unreachable (%s: %s); counting in memory per process, "
                "retrying every %ss", name, type(exc).__name__, exc, self._retry_shared_after_s,
            )
        else:
            log.info("%s for rate limits still unreachable (%s: %s)", name, type(exc).__name__, exc)
        self._shared_down = True
        self._retry_shared_at = self._clock() + self._retry_shared_after_s

    def _shared_answered(self, name: str) -> None:
        if self._shared_down:
            log.warning("%s for rate limits reachable again; counts are shared again", name)
        self._shared_down = False

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()
        # MemoryStorage schedules an expiry task; don't leave it pending past the event loop.
        timer = getattr(self._memory, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
        await self._memory.reset()


async def _count(limiter: RateLimiter, item: limits.RateLimitItem, scope: str, key: str, *,
                 count: bool = True) -> Decision:
    allowed = await (limiter.hit(item, scope, key) if count else limiter.test(item, scope, key))
    # Moving window: reset_time is when the oldest hit in the window leaves it (a slot frees),
    # remaining is what is left after this hit.
    stats = await limiter.get_window_stats(item, scope, key)
    reset_after = max(0, math.ceil(stats.reset_time - time.time()))
    if allowed:
        remaining = max(0, stats.remaining)
    else:
        remaining = 0
        reset_after = max(1, reset_after)  # "Retry-After: 0" would invite an immediate retry
    return Decision(allowed=allowed, limit=item.amount, remaining=remaining,
                    reset_after=reset_after, window_s=int(item.get_expiry()))


def client_key(request: Request) -> str:
    """The key for "per client" limits: the peer address of the request.

    X-Forwarded-For is not read here: anyone can send it. Behind a trusted proxy, uvicorn's
    ``proxy_headers`` (restricted by ``FORWARDED_ALLOW_IPS``) already puts the real client in
    ``request.client``. IPv6 addresses are reduced to their /64, the block one subscriber
    usually gets, so a client cannot dodge the limit by rotating addresses inside it.
    """
    host = request.client.host if request.client else ""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # e.g. a test client's "testclient"
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    if address.version == 6:
        return str(address.ipv4_mapped)
    return str(address)


def name_key(name: str) -> str:
    """The key for "per user name" limits: a short SHA-256 hex of the trimmed, lowercased name.

    Keeps user names out of Redis; "Support" and "support " count as the same name.
    """
    return hashlib.sha256(name.strip().lower().encode()).hexdigest()[:16]

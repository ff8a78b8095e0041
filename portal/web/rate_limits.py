"""Rate limits: how many requests a client, a user name, a salon or a webhook source may make.

Owns: parsing the configured limit strings (one per scope: "admin", "login_client",
"api_key_client", "login_user", "login_user_client", "owner", "webhook_whatsapp", "webhook_yclients",
"landing"), counting hits with the `limits` library's
moving-window strategy, the choice of storage -- Redis when ``REDIS_URL`` is set so that every
instance shares the counts, in-memory (per instance) otherwise -- the fall-back to in-memory
counting while Redis is unreachable and the periodic retry of Redis, and the HTTP headers of a
decision (``Retry-After`` and the IETF draft ``RateLimit`` / ``RateLimit-Policy`` headers).

It does not own the routes, the 429 page, the health endpoint (which reads
``RateLimits.degraded`` and ``RateLimits.backend``) or the settings (the lead maps
``ADMIN_RATE_LIMIT`` & co. onto scopes). One ``RateLimits`` per process, one event loop.

Keys: callers pass a client address (``client_key``), a salon id, a webhook source, or a hash of
a user name (``name_key``). Never a secret (password, token, API key) and never personal data in
clear: keys end up in Redis, where anyone with access to it can read them.

Time: the ``limits`` storages stamp hits with wall-clock time (``time.time()``), so windows and
``Decision.reset_after`` are wall-clock. The injected ``clock`` only schedules the Redis retry.
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

import coredis
import limits
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter
from starlette.requests import Request

log = logging.getLogger(__name__)

BACKEND_MEMORY = "memory"
BACKEND_REDIS = "redis"
BACKEND_FALLBACK = "memory (redis unreachable)"


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


class RateLimits:
    """Counts hits per (scope, key) and answers with a ``Decision``.

    With ``redis_url`` the counts live in Redis and are shared by every instance. When Redis
    fails (refused, timed out, any error), the hit is counted in this instance's memory instead:
    requests are still limited -- per instance, so looser -- and never fail because of Redis.
    ``degraded`` stays True until Redis answers again; it is retried at most once every
    ``retry_redis_after_s`` seconds of ``clock`` so a dead Redis costs one timeout per period,
    not one per request.
    """

    def __init__(
        self,
        *,
        redis_url: str | None,
        limits: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        retry_redis_after_s: float = 30.0,
        redis_timeout_s: float = 1.0,
        key_prefix: str = "portal-rate-limits",
    ) -> None:
        # (`limits` here is the mapping, shadowing the library's module name in this method.)
        self._items = {scope: _parse_limit(scope, text) for scope, text in limits.items()}
        self._clock = clock
        self._retry_redis_after_s = retry_redis_after_s
        self._redis_timeout_s = redis_timeout_s
        self._memory = MemoryStorage()
        self._memory_limiter = MovingWindowRateLimiter(self._memory)
        self._redis_pool: coredis.ConnectionPool | None = None
        self._redis_limiter: RateLimiter | None = None
        if redis_url:
            uri = _limits_uri(redis_url)
            # Our own pool: bounded connect/read timeouts (a black-holed Redis must not hang
            # requests) and something we can close in aclose().
            self._redis_pool = coredis.ConnectionPool.from_url(
                redis_url, connect_timeout=redis_timeout_s, stream_timeout=redis_timeout_s
            )
            storage = RedisStorage(uri, key_prefix=key_prefix,
                                   connection_pool=self._redis_pool)  # type: ignore[arg-type]  # limits types its options as scalars
            self._redis_limiter = MovingWindowRateLimiter(storage)
        self._redis_down = False
        self._retry_redis_at = 0.0

    @property
    def backend(self) -> str:
        """"memory", "redis" or "memory (redis unreachable)"."""
        if self._redis_limiter is None:
            return BACKEND_MEMORY
        return BACKEND_FALLBACK if self._redis_down else BACKEND_REDIS

    @property
    def degraded(self) -> bool:
        """True while a configured Redis is unreachable (counts are per instance meanwhile)."""
        return self._redis_limiter is not None and self._redis_down

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
        if self._redis_limiter is not None and self._should_try_redis():
            try:
                # Belt and braces over the pool's own timeouts (e.g. waiting on the pool).
                async with asyncio.timeout(2 * self._redis_timeout_s):
                    decision = await _count(self._redis_limiter, item, scope, key, count=count)
            except Exception as exc:  # any Redis trouble: count in memory, never fail the request
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return decision
        return await _count(self._memory_limiter, item, scope, key, count=count)

    def _should_try_redis(self) -> bool:
        if not self._redis_down:
            return True
        now = self._clock()
        if now < self._retry_redis_at:
            return False
        # Push the next retry out before awaiting, so concurrent requests keep using memory
        # while this one probes Redis instead of all waiting on the same timeout.
        self._retry_redis_at = now + self._retry_redis_after_s
        return True

    def _redis_failed(self, exc: Exception) -> None:
        if not self._redis_down:
            # Once per outage, not per request. The URL is not logged: it may hold a password.
            log.warning(
                "Redis for rate limits unreachable (%s: %s); counting in memory per instance, "
                "retrying every %ss", type(exc).__name__, exc, self._retry_redis_after_s,
            )
        else:
            log.info("Redis for rate limits still unreachable (%s: %s)", type(exc).__name__, exc)
        self._redis_down = True
        self._retry_redis_at = self._clock() + self._retry_redis_after_s

    def _redis_answered(self) -> None:
        if self._redis_down:
            log.warning("Redis for rate limits reachable again; counts are shared again")
        self._redis_down = False

    async def aclose(self) -> None:
        if self._redis_pool is not None:
            self._redis_pool.disconnect()
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

"""Health for operators: /livez (process), /readyz (database) and /marketplace/health.

The public answer is the status and a timestamp; the detailed one (services, feature
flags, circuit breakers, warnings) needs `Authorization: Bearer <HEALTH_CHECK_TOKEN>`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast, runtime_checkable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from portal.platform.database import Pool, describe_error
from portal.platform.deps import container
from portal.platform.metrics import PoolHealth, PoolSample, PortalMetrics
from portal.platform.settings import Settings
from portal.platform.store import ping


# What health reads from the running portal, as protocols: the platform is the lowest layer
# and does not import the composition root (`portal.runtime`) or a subsystem; the container
# there fits these shapes.
class _Breaker(Protocol):
    def stats(self) -> dict[str, Any]: ...


class _RateLimits(Protocol):
    @property
    def degraded(self) -> bool: ...
    @property
    def backend(self) -> str: ...
    @property
    def shared(self) -> bool: ...


@runtime_checkable
class HealthDeps(Protocol):
    settings: Settings
    pool: Pool
    pool_health: PoolHealth
    metrics: PortalMetrics
    @property
    def breaker(self) -> _Breaker: ...
    @property
    def rate_limits(self) -> _RateLimits: ...
    def pool_sample(self) -> PoolSample: ...


@dataclass(frozen=True)
class DatabaseCheck:
    ok: bool
    latency_ms: float | None
    # Why the check failed (class and scrubbed message), for the detailed answer only:
    # "database unreachable" alone leaves an operator guessing between DNS, auth and load.
    error: str | None = None


async def database_check(runtime: HealthDeps) -> DatabaseCheck:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(runtime.settings.health_db_timeout_s):
            await ping(runtime.pool)
    except Exception as exc:
        return DatabaseCheck(False, None, describe_error(exc, runtime.settings.database_url))
    return DatabaseCheck(True, round((time.perf_counter() - started) * 1000, 2))


def health_deps(request: Request) -> HealthDeps:
    return cast(HealthDeps, container(request))  # it fits: see `platform.deps`


def _authorized(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def health(request: Request) -> JSONResponse:
    runtime = health_deps(request)
    # Sample the pool before our own check takes a connection: waiters seen now are real load.
    pool = runtime.pool_sample()
    runtime.pool_health.observe(pool)
    db = await database_check(runtime)
    db_ok = db.ok
    breaker = runtime.breaker.stats()
    warnings: list[str] = []
    if not db_ok:
        warnings.append("database unreachable")
    if breaker["state"] != "closed":
        warnings.append(f"QR circuit breaker is {breaker['state']}")
    warnings += runtime.pool_health.warnings()
    if runtime.rate_limits.degraded:
        warnings.append(f"rate limits counted per process: {runtime.rate_limits.backend}")
    status = "error" if not db_ok else ("degraded" if warnings else "ok")
    body: dict[str, object] = {"status": status, "timestamp": datetime.now(UTC).isoformat()}
    if _authorized(request, runtime.settings.health_check_token):
        body |= {
            "environment": "sandbox" if runtime.settings.sandbox else "production",
            "services": {"database_connected": db_ok, "database_latency_ms": db.latency_ms,
                         "database_error": db.error, "database_pool": pool},
            "featureFlags": {"useTransactionActivation": runtime.settings.use_transaction_activation},
            "circuitBreakers": {"qrGeneration": breaker},
            # Where counts live, and whether every worker and instance counts together.
            "rateLimits": {"backend": runtime.rate_limits.backend, "shared": runtime.rate_limits.shared},
            "warnings": warnings,
        }
    return JSONResponse(body, status_code=503 if status == "error" else 200,
                        headers={"Cache-Control": "no-store"})


async def livez(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    ok = (await database_check(health_deps(request))).ok
    return JSONResponse({"status": "ok" if ok else "error"}, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    """Prometheus exposition, behind the health token: it names salons' outcomes and load."""
    runtime = health_deps(request)
    if not _authorized(request, runtime.settings.health_check_token):
        return JSONResponse({"error": "send Authorization: Bearer <HEALTH_CHECK_TOKEN>", "code": "UNAUTHORIZED"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    """The operator's endpoints: probes, the marketplace's health check, metrics."""
    return [
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/marketplace/health", health),
        Route("/metrics", metrics),
    ]

"""Activation: finish the YClients install exactly once per salon, all or nothing.

In one PostgreSQL transaction, under a per-salon advisory lock:
  1. `pg_try_advisory_xact_lock(ACTIVATION_NAMESPACE, salon)`: not acquired means another
     request (on any instance) is activating this salon right now → 409.
  2. the salon row is re-read `FOR UPDATE` and checked (WhatsApp connected, inside the
     1-hour window, not already active), the API key hash and `activating` are written,
  3. `POST /partner/callback/redirect` (301 is success; redirects are not followed),
  4. `active`, commit.
The writes of step 2 only become visible with step 4, so a partner failure or a lost
connection leaves nothing half-written; the lock dies with the transaction.

The API key is *derived* (HMAC of API_KEY_SECRET, the salon and its next install
generation), never random: every retry of one install sends YClients the same key, so a
retry after "YClients accepted, our commit was lost" is recognised as the same install
(the sandbox answers 301 again; real YClients may answer "already installed", which we
confirm with `GET /salon/{id}/application/{app}` before calling it success). Only a hash
and a short prefix are stored.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from portal.activation.partner import PartnerError
from portal.platform.error_reporting import report_message
from portal.platform.locks import activation_lock
from portal.runtime import Runtime
from portal.salons import event_store as events

log = logging.getLogger(__name__)

# Serialization failure, deadlock, and the server ending our session (restart, terminate).
RETRYABLE_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
CONCURRENT_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Outcome:
    status_code: int
    code: str
    message_key: str | None = None  # what the owner reads (i18n key)
    redirect_url: str | None = None
    retry_after: int | None = None
    already_active: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code == 200


ALREADY_ACTIVE = Outcome(200, "ALREADY_ACTIVE", already_active=True)
PARTNER_MESSAGES = {
    "timeout": "activation.partner_timeout",
    "unreachable": "activation.partner_unreachable",
    "auth": "activation.partner_config",
    "already_installed": "activation.partner_already_installed",
}


def derive_api_key(secret: str, yclients_salon_id: int, generation: int) -> str:
    mac = hmac.new(secret.encode(), f"yclients-api-key:v1:{yclients_salon_id}:{generation}".encode(), hashlib.sha256)
    return "sk_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def key_hash(api_key: str) -> str:
    # The key has 256 bits of entropy: a plain hash cannot be brute-forced back.
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_prefix(api_key: str) -> str:
    return api_key[:7]


_SALON_CHECK = """
SELECT s.id, s.yclients_salon_id, s.integration_status, s.install_generation,
       now() - s.landed_at > make_interval(secs => $2) AS window_over, l.status AS link_status
FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = s.id
WHERE s.yclients_salon_id = $1
"""


# The two writes of an activation, shared by the transactional and the legacy path.
_MARK_ACTIVATING = ("UPDATE salons SET integration_status = 'activating', api_key_hash = $2,"
                    " api_key_prefix = $3, updated_at = now() WHERE id = $1")
_MARK_ACTIVE = ("UPDATE salons SET integration_status = 'active', activated_at = now(),"
                " install_generation = $2, last_error = NULL, updated_at = now() WHERE id = $1")


def _next_install(settings, row) -> tuple[int, int, str]:
    """(salon row id, the install generation this activation creates, its API key)."""
    generation = row["install_generation"] + 1
    return row["id"], generation, derive_api_key(settings.api_key_secret, row["yclients_salon_id"], generation)


async def _activated(runtime: Runtime, salon_id: int, generation: int, api_key: str, mode: str,
                     redirect_url: str) -> Outcome:
    await events.record_quietly(runtime.pool, salon_id, "integration_activated", {
        "activation_mode": mode, "install_generation": generation, "api_key_prefix": key_prefix(api_key)})
    return Outcome(200, "ACTIVATED", redirect_url=redirect_url)


def _refusal(row) -> Outcome | None:
    if row is None:
        return Outcome(404, "SALON_NOT_FOUND", "activation.not_found")
    if row["integration_status"] == "active":
        return ALREADY_ACTIVE
    if row["link_status"] != "connected":
        return Outcome(409, "WHATSAPP_NOT_CONNECTED", "activation.whatsapp_first")
    if row["window_over"]:
        return Outcome(410, "REGISTRATION_EXPIRED", "activation.expired")
    return None


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return exc.sqlstate in RETRYABLE_SQLSTATES or (exc.sqlstate or "").startswith("08")
    return isinstance(exc, (asyncpg.InterfaceError, ConnectionError, OSError))


def _backoff(attempt: int) -> float:
    # Full jitter: spreads retries of many contenders apart.
    return random.uniform(0, 0.05 * (2**attempt))


async def activate(runtime: Runtime, yclients_salon_id: int) -> Outcome:
    """The whole activation for one salon, within the per-instance concurrency bound."""
    started = time.perf_counter()
    outcome = await _bounded(runtime, yclients_salon_id)
    runtime.metrics.activation(outcome.code, time.perf_counter() - started)
    if outcome.code == "CONCURRENT_ACTIVATION":
        report_message("concurrent activation refused", salon_id=str(yclients_salon_id))
    return outcome


async def _bounded(runtime: Runtime, yclients_salon_id: int) -> Outcome:
    settings = runtime.settings
    try:
        async with asyncio.timeout(settings.activation_queue_wait_s):
            await runtime.activation_slots.acquire()
    except TimeoutError:
        return Outcome(503, "ACTIVATION_BUSY", "activation.busy", retry_after=2)
    try:
        if settings.use_transaction_activation:
            return await _with_retries(runtime, yclients_salon_id)
        return await _legacy(runtime, yclients_salon_id)
    finally:
        runtime.activation_slots.release()


async def _with_retries(runtime: Runtime, yclients_salon_id: int) -> Outcome:
    attempts = runtime.settings.activation_attempts
    for attempt in range(attempts):
        try:
            return await _transaction(runtime, yclients_salon_id)
        except Exception as exc:
            if not _is_retryable(exc):
                raise
            log.warning("activation transaction retried", extra={
                "salon_id": yclients_salon_id, "attempt": attempt + 1,
                "error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None)})
            if attempt + 1 == attempts:
                return Outcome(503, "DATABASE_UNAVAILABLE", "activation.database", retry_after=5)
            await asyncio.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


async def _transaction(runtime: Runtime, yclients_salon_id: int) -> Outcome:
    settings = runtime.settings
    failure: PartnerError | None = None
    async with runtime.pool.acquire() as conn:
        try:
            async with conn.transaction():
                # A server-wide idle-in-transaction timeout shorter than the partner call
                # would kill us mid-call; this transaction may idle that long, no longer.
                idle_ms = int((settings.yclients_timeout_s + 15) * 1000)
                await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {idle_ms}")
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", *activation_lock(yclients_salon_id)):
                    log.warning("concurrent activation refused", extra={"salon_id": yclients_salon_id})
                    return Outcome(409, "CONCURRENT_ACTIVATION", "activation.in_progress",
                                   retry_after=CONCURRENT_RETRY_AFTER_S)
                row = await conn.fetchrow(_SALON_CHECK + " FOR UPDATE OF s", yclients_salon_id,
                                          float(settings.registration_window_s))
                refusal = _refusal(row)
                if refusal is not None:
                    return refusal
                salon_id, generation, api_key = _next_install(settings, row)
                await conn.execute(_MARK_ACTIVATING, salon_id, key_hash(api_key), key_prefix(api_key))
                redirect_url = await _finish_install(runtime, yclients_salon_id, api_key)
                await conn.execute(_MARK_ACTIVE, salon_id, generation)
        except PartnerError as exc:
            failure = exc  # the transaction has rolled back: no key kept, status untouched
    if failure is not None:
        return await _failed(runtime, salon_id, yclients_salon_id, failure, mode="transaction")
    return await _activated(runtime, salon_id, generation, api_key, "transaction", redirect_url)


async def _finish_install(runtime: Runtime, yclients_salon_id: int, api_key: str) -> str:
    settings = runtime.settings
    try:
        return await runtime.partner.finish_install(
            salon_id=yclients_salon_id, application_id=settings.app_id, api_key=api_key,
            webhook_urls=[f"{settings.base_url}/webhook/yclients"])
    except PartnerError as exc:
        if exc.kind != "already_installed" or not await _installed_with(runtime, yclients_salon_id, api_key):
            raise
        # YClients already holds this very key: an earlier try of this install got through.
        log.info("install confirmed after 'already installed'", extra={"salon_id": yclients_salon_id})
        return f"{settings.base_url}/onboarding"


async def _installed_with(runtime: Runtime, yclients_salon_id: int, api_key: str) -> bool:
    try:
        data = await runtime.partner.get_installation(yclients_salon_id, runtime.settings.app_id)
    except PartnerError:
        return False
    if not data:
        return False
    prefix = data.get("api_key_prefix") if isinstance(data, dict) else None
    return isinstance(prefix, str) and bool(prefix) and api_key.startswith(prefix)


async def _failed(runtime: Runtime, salon_id: int, yclients_salon_id: int, exc: PartnerError, *, mode: str) -> Outcome:
    log.warning("activation failed at the partner", extra={
        "salon_id": yclients_salon_id, "error": exc.safe_summary, "excerpt": exc.excerpt})
    async with runtime.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE salons SET integration_status = 'activation_failed', last_error = $2, updated_at = now()"
            " WHERE id = $1 AND integration_status <> 'active'", salon_id, exc.safe_summary)
        await events.record(conn, salon_id, "activation_failed", {
            "error": exc.safe_summary, "activation_mode": mode,
            "timestamp": datetime.now(UTC).isoformat()})
    status = 504 if exc.kind == "timeout" else 502
    return Outcome(status, f"PARTNER_{exc.kind.upper()}", PARTNER_MESSAGES.get(exc.kind, "activation.partner_failed"))


async def _legacy(runtime: Runtime, yclients_salon_id: int) -> Outcome:
    """The pre-transaction path, kept behind USE_TRANSACTION_ACTIVATION=false for rollback:
    the same steps one after another, undoing its writes when the partner fails. No lock:
    concurrent requests are not serialised here (the reason the new path exists)."""
    settings = runtime.settings
    async with runtime.pool.acquire() as conn:
        row = await conn.fetchrow(_SALON_CHECK, yclients_salon_id, float(settings.registration_window_s))
        refusal = _refusal(row)
        if refusal is not None:
            return refusal
        salon_id, generation, api_key = _next_install(settings, row)
        await conn.execute(_MARK_ACTIVATING, salon_id, key_hash(api_key), key_prefix(api_key))
    try:
        redirect_url = await _finish_install(runtime, yclients_salon_id, api_key)
    except PartnerError as exc:
        async with runtime.pool.acquire() as conn:
            await conn.execute("UPDATE salons SET api_key_hash = NULL, api_key_prefix = NULL WHERE id = $1", salon_id)
        return await _failed(runtime, salon_id, yclients_salon_id, exc, mode="legacy")
    async with runtime.pool.acquire() as conn:
        await conn.execute(_MARK_ACTIVE, salon_id, generation)
    return await _activated(runtime, salon_id, generation, api_key, "legacy", redirect_url)

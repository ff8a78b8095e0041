"""Activation: finish the YClients install exactly once per salon, all or nothing.

Under a per-salon advisory lock held by the session for the whole activation (so one
request at a time per salon on any instance; not acquired → 409), YClients' own install
status is read first (`GET /salon/{id}/application/{app}`, no transaction open): the
platform's truth decides, not a clock of ours. Only a `pending` install gets a callback
(the platform refuses one after `active`); `active` goes to recovery (`recovery`), `freezed`
and "not installed" are refused with a sentence, and an unreadable status is "try again".
Then a short transaction commits the activation *intent* (`intent_store`): whatever happens
next, we know we asked YClients for this install. Then, in one PostgreSQL transaction on
the same connection:
  1. `pg_try_advisory_xact_lock(ACTIVATION_NAMESPACE, salon)` (re-entrant for this session),
  2. the salon row is re-read `FOR UPDATE` and checked (WhatsApp connected, not already
     active), the API key hash and `activating` are written,
  3. `POST /partner/callback/redirect` (a 301 or a 200 `{"success": true}` is success;
     redirects are not followed),
  4. `active` and the intent closed, commit.
The writes of step 2 only become visible with step 4, so a partner failure or a lost
connection leaves nothing half-written; the lock dies with the transaction.

The API key is *derived* (HMAC of API_KEY_SECRET, the salon and its next install
generation), never random: every retry of one install sends YClients the same key, so a
retry after "YClients accepted, our commit was lost" is recognised as the same install
(YClients answers "already installed"; its install status says `active` and our unfinished
intent says the install is ours, see `recovery`). Only a hash is stored, never any part of
the key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg

from portal.activation import intent_store as intents
from portal.activation import recovery, store
from portal.activation.deps import ActivationDeps
from portal.activation.install_status import platform_status
from portal.activation.outcomes import (
    ALREADY_ACTIVE,
    BUSY,
    CONCURRENT,
    NOT_FOUND,
    PARTNER_MESSAGES,
    Outcome,
)
from portal.activation.partner import PartnerError
from portal.activation.store import ActivationCheck
from portal.platform.database import Connection
from portal.platform.error_reporting import report_message
from portal.platform.settings import Settings
from portal.salons import event_store as events
from portal.salons import store as salons
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.whatsapp.link import LinkStatus

log = logging.getLogger(__name__)

# Serialization failure, deadlock, and the server ending our session (restart, terminate).
RETRYABLE_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
# How much longer than the partner call the activation transaction may sit idle.
IDLE_MARGIN_S = 15


def derive_api_key(secret: str, yclients_salon_id: YclientsSalonId, generation: int) -> str:
    mac = hmac.new(secret.encode(), f"yclients-api-key:v1:{yclients_salon_id}:{generation}".encode(), hashlib.sha256)
    return "sk_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def key_hash(api_key: str) -> str:
    # The key has 256 bits of entropy: a plain hash cannot be brute-forced back.
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Install:
    """One activation's install: the salon, the generation it creates, the key YClients gets."""

    salon_pk: SalonPk
    generation: int
    api_key: str
    attempted_before: bool = False  # an earlier attempt of this install has an unknown outcome


def _next_install(settings: Settings, salon: ActivationCheck) -> Install:
    generation = salon.install_generation + 1
    # `activating` committed is the legacy path's attempt (from before intents) never finished.
    return Install(salon.salon_pk, generation,
                   derive_api_key(settings.api_key_secret, salon.yclients_salon_id, generation),
                   attempted_before=salon.integration_status == IntegrationStatus.ACTIVATING)


async def _mark_activating(conn: Connection, install: Install) -> None:
    await salons.mark_activating(conn, install.salon_pk, key_hash(install.api_key))


async def _open_intent(conn: Connection, install: Install) -> Install:
    """Record the intent in the caller's (short, separate) transaction; commit follows."""
    attempted_before = await intents.open_intent(conn, install.salon_pk, install.generation,
                                                 key_hash(install.api_key))
    return replace(install, attempted_before=attempted_before or install.attempted_before)


async def _prepare(runtime: ActivationDeps, conn: Connection, yclients_salon_id: YclientsSalonId) -> Outcome | Install:
    """Step 2's intent, committed in its own short transaction on the activation's connection
    (a second connection per activation could exhaust a small pool): a refusal, or the install."""
    settings = runtime.settings
    async with conn.transaction():
        salon = await store.check_salon(conn, yclients_salon_id, for_update=False)
        if salon is None:
            return NOT_FOUND
        if (refusal := _refusal(salon)) is not None:
            return refusal
        return await _open_intent(conn, _next_install(settings, salon))


async def _activated(runtime: ActivationDeps, install: Install, mode: str, redirect_url: str) -> Outcome:
    await events.record_quietly(runtime.pool, install.salon_pk, "integration_activated", {
        "activation_mode": mode, "install_generation": install.generation})
    return Outcome(200, "ACTIVATED", redirect_url=redirect_url)


def _refusal(salon: ActivationCheck) -> Outcome | None:
    if salon.integration_status == IntegrationStatus.ACTIVE:
        return ALREADY_ACTIVE
    if salon.link_status != LinkStatus.CONNECTED:
        return Outcome(409, "WHATSAPP_NOT_CONNECTED", "activation.whatsapp_first")
    return None


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.PostgresError):
        return exc.sqlstate in RETRYABLE_SQLSTATES or (exc.sqlstate or "").startswith("08")
    return isinstance(exc, (asyncpg.InterfaceError, ConnectionError, OSError))


def _backoff(attempt: int) -> float:
    # Full jitter: spreads retries of many contenders apart.
    return random.uniform(0, 0.05 * (2**attempt))


async def activate(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId) -> Outcome:
    """The whole activation for one salon, within the per-instance concurrency bound."""
    started = time.perf_counter()
    outcome = await _bounded(runtime, yclients_salon_id)
    runtime.metrics.activation(outcome.code, time.perf_counter() - started)
    if outcome.code == "CONCURRENT_ACTIVATION":
        report_message("concurrent activation refused", salon_id=str(yclients_salon_id))
    return outcome


async def _bounded(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId) -> Outcome:
    settings = runtime.settings
    try:
        async with asyncio.timeout(settings.activation_queue_wait_s):
            await runtime.activation_slots.acquire()
    except TimeoutError:
        return BUSY
    try:
        if settings.use_transaction_activation:
            return await _with_retries(runtime, yclients_salon_id)
        return await _legacy(runtime, yclients_salon_id)
    finally:
        runtime.activation_slots.release()


async def _with_retries(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId) -> Outcome:
    attempts = runtime.settings.activation_attempts
    for attempt in range(attempts):
        try:
            return await _transaction(runtime, yclients_salon_id)
        except Exception as exc:
            if not _is_retryable(exc):
                raise
            log.warning("activation transaction retried", extra={
                "yclients_salon_id": yclients_salon_id, "attempt": attempt + 1,
                "error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", None)})
            if attempt + 1 == attempts:
                return Outcome(503, "DATABASE_UNAVAILABLE", "activation.database", retry_after=5)
            await asyncio.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


async def _transaction(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId) -> Outcome:
    try:
        async with runtime.pool.acquire() as conn:
            if not await store.try_session_lock(conn, yclients_salon_id):
                log.warning("concurrent activation refused", extra={"yclients_salon_id": yclients_salon_id})
                return CONCURRENT
            try:
                result = await _intent_then_install(runtime, conn, yclients_salon_id)
            finally:
                with contextlib.suppress(Exception):  # a dead session took the lock with it
                    await store.session_unlock(conn, yclients_salon_id)
    except _PartnerFailed as failed:
        # The transaction has rolled back (no key kept, status untouched) and its connection
        # is back in the pool before the failure is written on another.
        return await _failed(runtime, failed.install, yclients_salon_id, failed.error, mode="transaction")
    if isinstance(result, Outcome):
        return result
    _install, redirect_url = result
    return Outcome(200, "ACTIVATED", redirect_url=redirect_url)  # the event is in the transaction


async def _intent_then_install(runtime: ActivationDeps, conn: Connection,
                               yclients_salon_id: YclientsSalonId) -> Outcome | tuple[Install, str]:
    """Under the session lock: our own refusals, YClients' install status, the intent's short
    transaction (committed), then the activation's (or recovery's, for an `active` install)."""
    salon = await store.check_salon(conn, yclients_salon_id, for_update=False)
    if salon is None:
        return NOT_FOUND
    if (refusal := _refusal(salon)) is not None:
        return refusal  # no partner call for what our own records answer
    platform = await platform_status(runtime, yclients_salon_id)
    if isinstance(platform, Outcome):
        return platform
    prepared = await _prepare(runtime, conn, yclients_salon_id)
    if isinstance(prepared, Outcome):
        return prepared
    async with conn.transaction():
        if platform == "active":
            # Never a second callback: an unfinished intent of ours completes, else it is foreign.
            return await _recover_active(runtime, conn, yclients_salon_id, prepared)
        return await _locked_install(runtime, conn, yclients_salon_id, prepared)


async def _recover_active(runtime: ActivationDeps, conn: Connection, yclients_salon_id: YclientsSalonId,
                          prepared: Install) -> Outcome | tuple[Install, str]:
    """YClients holds an `active` install: ours if an earlier attempt's outcome is unknown
    (complete it, inside the caller's transaction), else someone else's (ForeignInstall)."""
    if not await store.try_lock(conn, yclients_salon_id):
        return CONCURRENT
    if not prepared.attempted_before:
        raise _PartnerFailed(prepared, recovery.foreign_install(yclients_salon_id, "active"))
    await recovery.complete_ours(conn, prepared.salon_pk, prepared.generation, key_hash(prepared.api_key))
    log.info("install confirmed by YClients' status", extra={"yclients_salon_id": yclients_salon_id})
    return prepared, f"{runtime.settings.base_url}/onboarding"


class _PartnerFailed(Exception):
    """The partner refused inside the transaction: raised to roll it back, with what
    recording the failure afterwards needs."""

    def __init__(self, install: Install, error: PartnerError) -> None:
        super().__init__(error.safe_summary)
        self.install, self.error = install, error


async def _locked_install(runtime: ActivationDeps, conn: Connection, yclients_salon_id: YclientsSalonId,
                          prepared: Install) -> Outcome | tuple[Install, str]:
    """Steps 1-4 of the module docstring, inside the caller's transaction: an Outcome when
    the salon is refused, else the install and where YClients sends the owner next."""
    settings = runtime.settings
    # A server-wide idle-in-transaction timeout shorter than the partner call would kill us
    # mid-call; this transaction may idle that long, no longer.
    await store.limit_idle_in_transaction(conn, int((settings.yclients_timeout_s + IDLE_MARGIN_S) * 1000))
    if not await store.try_lock(conn, yclients_salon_id):
        log.warning("concurrent activation refused", extra={"yclients_salon_id": yclients_salon_id})
        return CONCURRENT
    # The owner need not wait for this commit's WAL flush (~1 ms here, more on network
    # disks): the intent, flushed before the partner call, is the durable record; if a crash
    # loses this commit, the intent is open, YClients says active, and `recovery.reconcile`
    # completes the install.
    await store.commit_without_waiting_for_flush(conn)
    salon = await store.check_salon(conn, yclients_salon_id, for_update=True)
    if salon is None:
        return NOT_FOUND
    if (refusal := _refusal(salon)) is not None:
        return refusal  # another request finished it between the intent and this lock
    if salon.install_generation + 1 != prepared.generation:
        return CONCURRENT  # the salon moved on between the intent and this lock
    install = prepared
    await _mark_activating(conn, install)
    try:
        redirect_url = await _finish_install(runtime, yclients_salon_id, install)
    except PartnerError as exc:
        raise _PartnerFailed(install, exc) from exc
    await salons.mark_active(conn, install.salon_pk, install.generation)
    await intents.finish(conn, install.salon_pk, install.generation, "active")
    await _record_activated(conn, install, "transaction")
    return install, redirect_url


async def _record_activated(conn: Connection, install: Install, mode: str) -> None:
    """The event, in the activation's own transaction (one commit and one pool round trip
    fewer than a transaction of its own), under a savepoint: a failing event log is logged
    and never fails the activation."""
    try:
        async with conn.transaction():
            await events.record(conn, install.salon_pk, "integration_activated", {
                "activation_mode": mode, "install_generation": install.generation})
    except asyncpg.PostgresError as exc:
        log.warning("event not recorded", extra={"event_type": "integration_activated", "error": type(exc).__name__})


async def _finish_install(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId, install: Install) -> str:
    """The callback; where the owner's browser goes next (YClients' Location, or our own page
    when YClients answered 200 `{"success": true}`)."""
    settings = runtime.settings
    try:
        # Entity webhooks (appointments, clients…) go to the receivers the operator names;
        # our /webhook/yclients is the app's lifecycle Callback URL, set in YClients' cabinet.
        location = await runtime.partner.finish_install(
            yclients_salon_id=yclients_salon_id, application_id=settings.app_id, api_key=install.api_key,
            webhook_urls=list(settings.yclients_entity_webhook_urls))
        return location or f"{settings.base_url}/onboarding"
    except PartnerError as exc:
        if exc.kind != "already_installed" or not await recovery.after_already_installed(
                runtime, yclients_salon_id, install.attempted_before):
            raise
        # YClients holds an active install and an earlier attempt of ours never learned its
        # outcome: that attempt got through (with this same derived key).
        log.info("install confirmed after 'already installed'", extra={"yclients_salon_id": yclients_salon_id})
        return f"{settings.base_url}/onboarding"


async def _failed(runtime: ActivationDeps, install: Install, yclients_salon_id: YclientsSalonId, exc: PartnerError, *,
                  mode: str) -> Outcome:
    log.warning("activation failed at the partner", extra={
        "yclients_salon_id": yclients_salon_id, "error": exc.safe_summary, "excerpt": exc.excerpt})
    foreign = isinstance(exc, recovery.ForeignInstall)
    salon_pk, outcome = install.salon_pk, recovery.failure_outcome(exc, install.attempted_before)
    async with runtime.pool.acquire() as conn, conn.transaction():
        await salons.mark_activation_failed(conn, salon_pk, recovery.FOREIGN_ERROR if foreign else exc.safe_summary)
        await events.record(conn, salon_pk, "activation_failed", {
            "error": exc.safe_summary, "activation_mode": mode,
            "timestamp": datetime.now(UTC).isoformat()})
        if outcome is None:
            await intents.note_error(conn, salon_pk, install.generation, exc.safe_summary)
        else:
            await intents.finish(conn, salon_pk, install.generation, outcome, exc.safe_summary)
        if foreign:  # staff see it on the dashboard's overview
            await events.record(conn, salon_pk, "foreign_install_detected", {
                "install_status": getattr(exc, "install_status", None)})
    status = 504 if exc.kind == "timeout" else 502
    return Outcome(status, f"PARTNER_{exc.kind.upper()}", PARTNER_MESSAGES.get(exc.kind, "activation.partner_failed"))


async def _legacy(runtime: ActivationDeps, yclients_salon_id: YclientsSalonId) -> Outcome:
    """The pre-transaction path, kept behind USE_TRANSACTION_ACTIVATION=false for rollback:
    the same steps one after another, undoing its writes when the partner fails. No lock:
    concurrent requests are not serialised here (the reason the new path exists)."""
    settings = runtime.settings
    async with runtime.pool.acquire() as conn:
        salon = await store.check_salon(conn, yclients_salon_id, for_update=False)
        if salon is None:
            return NOT_FOUND
        if (refusal := _refusal(salon)) is not None:
            return refusal
    # The status decides here too; an `active` install is left to the reconciler (no lock).
    platform = await platform_status(runtime, yclients_salon_id)
    if isinstance(platform, Outcome):
        return platform
    async with runtime.pool.acquire() as conn:
        async with conn.transaction():
            install = await _open_intent(conn, _next_install(settings, salon))
        if platform == "active":
            if not install.attempted_before:
                return await _failed(runtime, install, yclients_salon_id,
                                     recovery.foreign_install(yclients_salon_id, platform), mode="legacy")
            async with conn.transaction():
                await recovery.complete_ours(conn, install.salon_pk, install.generation, key_hash(install.api_key))
            return await _activated(runtime, install, "legacy", f"{settings.base_url}/onboarding")
        await _mark_activating(conn, install)
    try:
        redirect_url = await _finish_install(runtime, yclients_salon_id, install)
    except PartnerError as exc:
        async with runtime.pool.acquire() as conn:
            await salons.forget_key(conn, install.salon_pk)
        return await _failed(runtime, install, yclients_salon_id, exc, mode="legacy")
    async with runtime.pool.acquire() as conn, conn.transaction():
        await salons.mark_active(conn, install.salon_pk, install.generation)
        await intents.finish(conn, install.salon_pk, install.generation, "active")
    return await _activated(runtime, install, "legacy", redirect_url)

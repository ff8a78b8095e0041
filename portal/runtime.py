"""What one running portal holds: the pool, outgoing clients, breaker, gateway.

The composition root: built in the app's lifespan and put in every request's state. No
package below names `Runtime`: each reads it through its own typed accessor as a Protocol of
what it uses (`platform.deps`; `web.deps.WebDeps`, `whatsapp.deps.WhatsAppDeps`, ...), which
this container fits structurally (`_fits` has the type checker prove it; `Container` is
what the accessors check per request). Nothing here is
module-level: two apps in one process share nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.templating import Jinja2Templates

from portal.activation.deps import ActivationDeps
from portal.activation.partner import PartnerClient, PartnerError
from portal.onboarding.admission import AdmissionRules, InstallStatusUnknown
from portal.onboarding.deps import OnboardingDeps
from portal.onboarding.token import VerifiedTokens
from portal.platform.database import Pool, open_database
from portal.platform.deps import Container
from portal.platform.error_reporting import init_sentry
from portal.platform.metrics import PoolGauge, PoolHealth, PoolSample, PortalMetrics
from portal.platform.notifications import Notifications
from portal.platform.routes import HealthDeps
from portal.platform.settings import Settings
from portal.salons.ids import YclientsSalonId
from portal.sandbox.deps import SandboxDeps
from portal.sandbox.marketplace_state import SandboxMarketplace
from portal.sandbox.partner_api import create_partner_api
from portal.support.deps import SupportDeps
from portal.web.deps import WebDeps
from portal.web.rate_limits import RateLimits
from portal.whatsapp.breaker import Rules
from portal.whatsapp.breaker_store import BreakerStore
from portal.whatsapp.deps import WhatsAppDeps
from portal.whatsapp.gateways.evolution import EvolutionGateway
from portal.whatsapp.gateways.simulator import SimulatedGateway
from portal.whatsapp.gateways.waha import WahaGateway
from portal.whatsapp.link import WhatsAppGateway
from portal.whatsapp.poll_cache import LinkVersions, QrRenewals
from portal.whatsapp.qr_image import QrImages
from portal.whatsapp.shared_breaker import SharedBreaker
from portal.whatsapp.sweep import SafetySweep
from portal.yclients_webhooks.deps import WebhookDeps


@dataclass
class Runtime(Container):
    settings: Settings
    pool: Pool
    templates: Jinja2Templates
    partner: PartnerClient
    gateway: WhatsAppGateway
    breaker: SharedBreaker  # one for the deployment: its state is shared through PostgreSQL
    market: SandboxMarketplace | None  # the sandbox's stand-in for YClients, demo mode only
    # Bounds activations per instance: each holds a pool connection for the partner call.
    activation_slots: asyncio.Semaphore
    rate_limits: RateLimits
    metrics: PortalMetrics
    pool_health: PoolHealth
    qr_images: QrImages
    notifications: Notifications
    link_versions: LinkVersions
    verified_tokens: VerifiedTokens
    install_statuses: PartnerInstallStatuses
    admission_rules: AdmissionRules
    qr_renewals: QrRenewals
    sweep: SafetySweep | None = None  # with the gateway's events on: the safety net's sweep

    def pool_sample(self) -> PoolSample:
        return PoolGauge.sample(self.pool)


def _fits(runtime: Runtime) -> tuple[HealthDeps, WebDeps, OnboardingDeps, WhatsAppDeps, ActivationDeps,
                                     WebhookDeps, SupportDeps, SandboxDeps]:
    """Never called: the type checker proves here that the container fits every package's
    Protocol, which the packages' accessors rely on (`platform.deps`)."""
    return runtime, runtime, runtime, runtime, runtime, runtime, runtime, runtime


class PartnerInstallStatuses:
    """YClients' install status as the landing asks for it (`admission.InstallStatusSource`):
    the partner client's answer, its failures said as "cannot tell"."""

    def __init__(self, partner: PartnerClient) -> None:
        self._partner = partner

    async def install_status(self, yclients_salon_id: YclientsSalonId, application_id: int) -> str | None:
        try:
            return await self._partner.install_status(yclients_salon_id, application_id)
        except PartnerError as exc:
            raise InstallStatusUnknown(exc.safe_summary) from None


def build_partner(settings: Settings, market: SandboxMarketplace | None) -> PartnerClient:
    """The YClients partner client. In demo mode, when it points at the sandbox's own partner
    API, it calls that API in process: the portal needs no network to ask itself (a test
    client is not listening on its base URL), and the 301's host is still the sandbox's."""
    transport: httpx.AsyncBaseTransport | None = None
    sandbox_api = f"{settings.base_url}/sandbox/api"
    if market is not None and settings.yclients_api_url.rstrip("/") == sandbox_api:
        transport = httpx.ASGITransport(app=create_partner_api(market), root_path="/sandbox/api")
    return PartnerClient(settings.yclients_api_url, settings.partner_token or "",
                         timeout_s=settings.yclients_timeout_s,
                         redirect_hosts=settings.yclients_redirect_hosts, transport=transport)


def build_gateway(settings: Settings) -> WhatsAppGateway:
    if settings.whatsapp_gateway == "waha":
        return WahaGateway(
            settings.waha_url or "", settings.waha_api_key or "",
            webhook_url=f"{settings.base_url}/webhook/whatsapp" if settings.waha_webhooks else None,
            webhook_hmac_key=settings.waha_webhook_hmac_key,
            webhook_token=settings.waha_webhook_token,
            accept_unauthenticated_webhooks=settings.sandbox,
            timeout_s=settings.waha_timeout_s,
        )
    if settings.whatsapp_gateway == "evolution":
        return EvolutionGateway(
            settings.evolution_url or "", settings.evolution_api_key or "",
            webhook_url=f"{settings.base_url}/webhook/whatsapp",
            webhook_token=settings.evolution_webhook_token,
            accept_unauthenticated_webhooks=settings.sandbox,
            timeout_s=settings.waha_timeout_s,
        )
    return SimulatedGateway(
        starting_s=settings.sim_starting_s, qr_first_ttl_s=settings.sim_qr_first_ttl_s,
        qr_next_ttl_s=settings.sim_qr_next_ttl_s, qr_count=settings.sim_qr_count,
        linking_s=settings.sim_linking_s,
    )


def build_rate_limits(settings: Settings, pool: Pool) -> RateLimits:
    # One scope per endpoint family, so that no family's traffic can use up another's: forged
    # gateway webhooks cannot 429 YClients' deliveries, wrong API keys cannot lock the staff
    # sign-in. Families that share a setting still count apart. Counts are shared by every
    # worker and instance: in Redis when configured, else in PostgreSQL.
    return RateLimits(redis_url=settings.redis_url, pool=pool, limits={
        "admin": settings.admin_rate_limit, "login_client": settings.login_rate_limit,
        "api_key_client": settings.login_rate_limit,
        "login_user": settings.login_user_rate_limit, "owner": settings.owner_rate_limit,
        "webhook_whatsapp": settings.webhook_rate_limit, "webhook_yclients": settings.webhook_rate_limit,
        "login_user_client": settings.login_user_client_rate_limit, "landing": settings.landing_rate_limit,
    })


def build_breaker(settings: Settings, metrics: PortalMetrics, pool: Pool) -> SharedBreaker:
    # The instance id is made up at start: "seen by k of n instances" counts these.
    store = BreakerStore(pool, "qrGeneration", secrets.token_hex(6), settings.instance_name)
    rules = Rules(failure_threshold=settings.qr_breaker_failure_threshold,
                  reset_timeout_s=settings.qr_breaker_reset_timeout_s,
                  call_timeout_s=settings.qr_breaker_call_timeout_s,
                  success_threshold=settings.qr_breaker_success_threshold)
    return SharedBreaker(store, rules, name="qrGeneration", on_transition=metrics.breaker_transition("qrGeneration"))


@contextlib.asynccontextmanager
async def _shared_breaker(breaker: SharedBreaker, notifications: Notifications) -> AsyncIterator[SharedBreaker]:
    """The breaker's mirror follows announcements, and reloads after the listener was away."""
    notifications.subscribe("breaker", breaker.announced)
    notifications.subscribe("breaker_seen", breaker.acknowledged)
    notifications.on_reconnect(breaker.reload)
    await breaker.start()
    try:
        yield breaker
    finally:
        await breaker.stop()


@contextlib.asynccontextmanager
async def _listening(dsn: str) -> AsyncIterator[tuple[Notifications, LinkVersions]]:
    """The instance's notification listener and what it keeps current."""
    notifications = Notifications(dsn)
    versions = LinkVersions(trusted=notifications.connected.is_set)
    notifications.subscribe("link", versions.announced)

    async def reload() -> None:  # whatever was announced while away is unknown: forget all
        versions.forget_all()

    notifications.on_reconnect(reload)
    await notifications.start()
    try:
        yield notifications, versions
    finally:
        await notifications.stop()


@contextlib.asynccontextmanager
async def _sweeping(runtime: Runtime, dsn: str) -> AsyncIterator[None]:
    """With the gateway's events on, this instance takes its turn at the safety sweep."""
    if not runtime.settings.gateway_events:
        yield
        return
    runtime.sweep = SafetySweep(runtime, dsn, interval_s=runtime.settings.link_recheck_s)
    await runtime.sweep.start()
    try:
        yield
    finally:
        await runtime.sweep.stop()


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, templates: Jinja2Templates,
                       market: SandboxMarketplace | None) -> AsyncIterator[Runtime]:
    from portal import __version__

    init_sentry(settings.sentry_dsn, environment="sandbox" if settings.sandbox else "production",
                release=__version__)
    async with open_database(settings) as database, _listening(database.dsn) as (notifications, versions):
        pool = database.pool
        pool_health = PoolHealth()
        metrics = PortalMetrics(pool_source=lambda: pool, pool_health=pool_health)
        partner = build_partner(settings, market)
        gateway = build_gateway(settings)
        rate_limits = build_rate_limits(settings, pool)
        try:
            async with _shared_breaker(build_breaker(settings, metrics, pool), notifications) as breaker:
                runtime = Runtime(
                    settings=settings, pool=pool, templates=templates, partner=partner, gateway=gateway,
                    breaker=breaker, market=market,
                    activation_slots=asyncio.Semaphore(settings.activation_concurrency),
                    rate_limits=rate_limits, metrics=metrics, pool_health=pool_health,
                    qr_images=QrImages(), notifications=notifications, link_versions=versions,
                    verified_tokens=VerifiedTokens(settings.jwt_secret),
                    install_statuses=PartnerInstallStatuses(partner),
                    admission_rules=AdmissionRules(application_id=settings.app_id,
                                                   require_pending=settings.landing_require_pending),
                    qr_renewals=QrRenewals())
                try:
                    async with _sweeping(runtime, database.dsn):
                        yield runtime
                finally:
                    await runtime.qr_renewals.aclose()
        finally:
            await partner.aclose()
            await gateway.aclose()
            await rate_limits.aclose()

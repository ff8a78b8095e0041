"""The portal's settings: read once from the environment into one frozen object.

`load_settings(env)` takes the environment as a mapping (and reads `.env` beside it when
present), so every test builds the settings it needs and no two apps share anything.
A bad value stops start-up with one line naming the setting (`SettingsError`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from starlette.config import Config

from portal.platform.demo_secrets import load_demo_secrets
from portal.platform.setting_values import SettingsError as SettingsError  # raised by load_settings
from portal.platform.setting_values import _choice, _flag, _list, _text, _typed, _url

DEFAULT_YCLIENTS_API_URL = "https://api.yclients.com/marketplace"
LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
GATEWAYS = ("simulator", "waha", "evolution")
DEMO_SECRETS = ("JWT_SECRET", "SESSION_SECRET", "YCLIENTS_PARTNER_TOKEN", "API_KEY_SECRET")

_RATE = re.compile(r"\d{1,7}\s*/\s*(\d+\s*)?(second|minute|hour|day)s?")


PHONE_REGIONS = tuple(sorted(phonenumbers.SUPPORTED_REGIONS))  # an unknown one stops start-up


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".portal")
    base_url: str = "http://127.0.0.1:8000"
    jwt_secret: str = ""
    session_secret: str = ""
    api_key_secret: str = ""
    yclients_api_url: str = DEFAULT_YCLIENTS_API_URL
    partner_token: str | None = None
    app_id: int = 1
    yclients_timeout_s: float = 30.0
    # Hosts the partner's 301 may send the owner to, besides the host of yclients_api_url.
    yclients_redirect_hosts: tuple[str, ...] = ("yclients.com", "www.yclients.com")
    # Entity webhook receivers sent at activation (never our lifecycle /webhook/yclients).
    yclients_entity_webhook_urls: tuple[str, ...] = ()
    # Listed with is_iframe: the pages may be framed by these hosts only, the owner's cookie
    # is SameSite=None; Secure; Partitioned.
    embed_in_yclients: bool = False
    yclients_frame_hosts: tuple[str, ...] = ("yclients.com", "*.yclients.com")
    sandbox: bool = True
    allow_unsigned_landing: bool = False
    # Bind a salon's owner user only while YClients reports the install `pending`.
    landing_require_pending: bool = True
    health_check_token: str | None = None
    log_level: str = "INFO"
    log_format: str = "console"
    database_pool_size: int = 10
    health_db_timeout_s: float = 2.0
    max_body_bytes: int = 64 * 1024
    onboarding_token_ttl_s: int = 3600
    # WhatsApp gateway and the breaker around session creation.
    whatsapp_gateway: str = "simulator"
    waha_url: str | None = None
    waha_api_key: str | None = None
    waha_webhook_hmac_key: str | None = None
    waha_webhook_token: str | None = None
    waha_webhooks: bool = True
    waha_timeout_s: float = 10.0  # every gateway call's timeout, Evolution's too
    evolution_url: str | None = None
    evolution_api_key: str | None = None
    evolution_webhook_token: str | None = None
    qr_breaker_failure_threshold: int = 5
    qr_breaker_reset_timeout_s: float = 60.0
    qr_breaker_call_timeout_s: float = 30.0
    qr_breaker_success_threshold: int = 2
    qr_poll_interval_s: float = 2.0
    gateway_refresh_s: float = 1.0
    whatsapp_safety_poll_s: float = 10.0
    whatsapp_retry_s: float = 5.0
    personal_data_retention_days: float = 30.0
    qr_wait_initial_s: float = 1.0
    qr_wait_max_s: float = 5.0
    qr_wait_attempts: int = 5
    # Gateway sessions waiting for a scan at once, beyond which owners see the busy screen.
    max_waiting_sessions: int = 200
    sim_starting_s: float = 2.0
    sim_qr_first_ttl_s: float = 60.0
    sim_qr_next_ttl_s: float = 20.0
    sim_qr_count: int = 6
    sim_linking_s: float = 2.0
    # Activation.
    use_transaction_activation: bool = True
    activation_concurrency: int = 4
    activation_queue_wait_s: float = 2.0
    activation_attempts: int = 3
    marketplace_url: str = "https://yclients.com/"
    # Support staff and operators.
    admin_username: str | None = None
    admin_password_hash: str | None = None
    admin_api_key: str | None = None
    admin_session_ttl_s: int = 8 * 3600
    admin_rate_limit: str = "100/minute"
    login_rate_limit: str = "10/minute"
    login_user_rate_limit: str = "100/hour"
    login_user_client_rate_limit: str = "5/minute"
    landing_rate_limit: str = "30/minute"
    owner_rate_limit: str = "60/minute"
    webhook_rate_limit: str = "120/minute"
    redis_url: str | None = None
    sentry_dsn: str | None = None
    webhook_idempotency_ttl_h: float = 48.0
    webhook_worker_interval_s: float = 5.0
    # Serving: whose X-Forwarded-* headers are believed (comma-separated addresses or
    # networks; None: nobody's), and the HTTP server's timeouts.
    forwarded_allow_ips: str | None = None
    keepalive_timeout_s: int = 5
    shutdown_timeout_s: int = 45
    body_read_timeout_s: float = 10.0
    instance_name: str | None = None
    # Owner pages show times in this zone (YClients' landing data names none); staff pages too.
    default_timezone: str = "Europe/Moscow"
    # Where a typed phone is read when the owner's own number does not say ("8 029…" is BY's).
    default_phone_region: str = "RU"

    @property
    def gateway_events(self) -> bool:
        """The gateway tells us what happens (WAHA with webhooks, Evolution): polling is a safety net."""
        return self.whatsapp_gateway == "evolution" or (self.whatsapp_gateway == "waha" and self.waha_webhooks)

    @property
    def link_recheck_s(self) -> float:
        """How often a waiting link's state is read from the gateway, across all instances."""
        return self.whatsapp_safety_poll_s if self.gateway_events else self.gateway_refresh_s

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    @property
    def base_origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)




def _secrets(config: Config, *, sandbox: bool, data_dir: Path, base_url: str) -> dict[str, Any]:
    """The three secrets, the partner token and the partner URL: generated in demo mode,
    required (long and distinct) in production."""
    found = {name: _text(config, name) for name in DEMO_SECRETS}
    api_url = _url(config, "YCLIENTS_API_URL", None)
    if sandbox:
        demo = load_demo_secrets(data_dir, DEMO_SECRETS)
        # The sandbox stands in for YClients, so the partner token is ours to invent too.
        found = {name: value or demo[name] for name, value in found.items()}
        api_url = api_url or f"{base_url}/sandbox/api"
    else:
        for name in ("JWT_SECRET", "SESSION_SECRET", "API_KEY_SECRET", "YCLIENTS_PARTNER_TOKEN"):
            if not found[name]:
                raise SettingsError(f"{name} is required in production mode (SANDBOX is off)")
        own = [found["JWT_SECRET"], found["SESSION_SECRET"], found["API_KEY_SECRET"]]
        for name, value in zip(("JWT_SECRET", "SESSION_SECRET", "API_KEY_SECRET"), own, strict=True):
            if len(value or "") < 32:
                raise SettingsError(f"{name} must be at least 32 characters")
        if len(set(own)) < 3:
            raise SettingsError("JWT_SECRET, SESSION_SECRET and API_KEY_SECRET must all differ")
    return {
        "jwt_secret": found["JWT_SECRET"], "session_secret": found["SESSION_SECRET"],
        "api_key_secret": found["API_KEY_SECRET"], "partner_token": found["YCLIENTS_PARTNER_TOKEN"],
        "yclients_api_url": api_url or DEFAULT_YCLIENTS_API_URL,
    }


def _gateway(config: Config, *, sandbox: bool) -> dict[str, Any]:
    """Which WhatsApp gateway, where, and how the portal waits for it."""
    gateway = _choice(config, "WHATSAPP_GATEWAY", GATEWAYS, "simulator" if sandbox else "waha")
    if gateway == "simulator" and not sandbox:
        raise SettingsError("WHATSAPP_GATEWAY=simulator is refused in production mode (SANDBOX is off)")
    waha_url = _url(config, "WAHA_URL", None)
    if gateway == "waha" and not waha_url:
        raise SettingsError("WAHA_URL is required when WHATSAPP_GATEWAY=waha")
    webhooks = _choice(config, "WAHA_WEBHOOKS", ("on", "off"), "on") == "on"
    hmac_key, token = _text(config, "WAHA_WEBHOOK_HMAC_KEY"), _text(config, "WAHA_WEBHOOK_TOKEN")
    if token is not None and len(token) < 24:
        raise SettingsError("WAHA_WEBHOOK_TOKEN must be at least 24 characters")
    if gateway == "waha" and webhooks and not sandbox and hmac_key is None and token is None:
        # An unauthenticated webhook endpoint lets anyone push "events" at us.
        raise SettingsError("WAHA webhooks need WAHA_WEBHOOK_HMAC_KEY or WAHA_WEBHOOK_TOKEN"
                            " in production mode, or WAHA_WEBHOOKS=off")
    evolution_url, evolution_token = _url(config, "EVOLUTION_URL", None), _text(config, "EVOLUTION_WEBHOOK_TOKEN")
    if gateway == "evolution" and not evolution_url:
        raise SettingsError("EVOLUTION_URL is required when WHATSAPP_GATEWAY=evolution")
    if evolution_token is not None and len(evolution_token) < 24:
        raise SettingsError("EVOLUTION_WEBHOOK_TOKEN must be at least 24 characters")
    if gateway == "evolution" and not sandbox and evolution_token is None:
        raise SettingsError("EVOLUTION_WEBHOOK_TOKEN is required with WHATSAPP_GATEWAY=evolution in production mode")
    return {
        "evolution_url": evolution_url, "evolution_api_key": _text(config, "EVOLUTION_API_KEY"),
        "evolution_webhook_token": evolution_token,
        "whatsapp_gateway": gateway,
        "waha_url": waha_url,
        "waha_api_key": _text(config, "WAHA_API_KEY"),
        "waha_webhook_hmac_key": hmac_key,
        "waha_webhook_token": token,
        "waha_webhooks": webhooks,
        "waha_timeout_s": _typed(config, "WAHA_TIMEOUT_S", float, 10.0, minimum=0.1),
        "qr_breaker_failure_threshold": _typed(config, "QR_BREAKER_FAILURE_THRESHOLD", int, 5, minimum=1),
        "qr_breaker_reset_timeout_s": _typed(config, "QR_BREAKER_RESET_TIMEOUT_S", float, 60.0, minimum=0.1),
        "qr_breaker_call_timeout_s": _typed(config, "QR_BREAKER_CALL_TIMEOUT_S", float, 30.0, minimum=0.1),
        "qr_breaker_success_threshold": _typed(config, "QR_BREAKER_SUCCESS_THRESHOLD", int, 2, minimum=1),
        "qr_poll_interval_s": _typed(config, "QR_POLL_INTERVAL_S", float, 2.0, minimum=0.2),
        "gateway_refresh_s": _typed(config, "WHATSAPP_REFRESH_S", float, 1.0, minimum=0.0),
        "whatsapp_safety_poll_s": _typed(config, "WHATSAPP_SAFETY_POLL_S", float, 10.0, minimum=0.1),
        "whatsapp_retry_s": _typed(config, "WHATSAPP_RETRY_S", float, 5.0, minimum=0.5),
        "qr_wait_initial_s": _typed(config, "QR_WAIT_INITIAL_S", float, 1.0, minimum=0.01),
        "qr_wait_max_s": _typed(config, "QR_WAIT_MAX_S", float, 5.0, minimum=0.01),
        "qr_wait_attempts": _typed(config, "QR_WAIT_ATTEMPTS", int, 5, minimum=1),
        "max_waiting_sessions": _typed(config, "MAX_WAITING_SESSIONS", int, 200, minimum=1),
        "sim_qr_count": _typed(config, "SIMULATOR_QR_COUNT", int, 6, minimum=1),
        "sim_starting_s": _typed(config, "SIMULATOR_STARTING_S", float, 2.0, minimum=0.0),
        "sim_qr_first_ttl_s": _typed(config, "SIMULATOR_QR_FIRST_TTL_S", float, 60.0, minimum=0.1),
        "sim_qr_next_ttl_s": _typed(config, "SIMULATOR_QR_NEXT_TTL_S", float, 20.0, minimum=0.1),
        "sim_linking_s": _typed(config, "SIMULATOR_LINKING_S", float, 2.0, minimum=0.0),
    }


def _staff(config: Config) -> dict[str, Any]:
    """Support staff's sign-in and API key, and the rate limits (with their shared store)."""
    admin_password_hash = _text(config, "ADMIN_PASSWORD_HASH")
    if admin_password_hash and not admin_password_hash.startswith("scrypt$"):
        raise SettingsError("ADMIN_PASSWORD_HASH must be made by `python -m portal hash-password` (scrypt$...)")
    admin_api_key = _text(config, "ADMIN_API_KEY")
    if admin_api_key and len(admin_api_key) < 24:
        raise SettingsError("ADMIN_API_KEY must be at least 24 characters")
    rate_limits = {}
    for name, default in (("ADMIN_RATE_LIMIT", "100/minute"), ("LOGIN_RATE_LIMIT", "10/minute"),
                          ("LOGIN_USER_RATE_LIMIT", "100/hour"), ("LOGIN_USER_CLIENT_RATE_LIMIT", "5/minute"),
                          ("OWNER_RATE_LIMIT", "60/minute"), ("WEBHOOK_RATE_LIMIT", "120/minute"),
                          ("LANDING_RATE_LIMIT", "30/minute")):
        value = str(config(name, default=default)).strip()
        if not _RATE.fullmatch(value):
            raise SettingsError(f"{name}={value!r} is not a rate like 100/minute")
        rate_limits[name.lower()] = value
    redis_url = _text(config, "REDIS_URL")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    return {
        "admin_username": _text(config, "ADMIN_USERNAME"),
        "admin_password_hash": admin_password_hash,
        "admin_api_key": admin_api_key,
        "admin_session_ttl_s": _typed(config, "ADMIN_SESSION_TTL_S", int, 8 * 3600, minimum=60),
        "redis_url": redis_url,
        **rate_limits,
    }


def _operations(config: Config) -> dict[str, Any]:
    """Database, logs, error reporting, the webhook worker and activation's bounds."""
    return {
        "database_url": _text(config, "DATABASE_URL"),
        "database_pool_size": _typed(config, "DATABASE_POOL_SIZE", int, 10, minimum=2),
        "health_check_token": _text(config, "HEALTH_CHECK_TOKEN"),
        "log_level": _choice(config, "LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
        "log_format": _choice(config, "LOG_FORMAT", LOG_FORMATS, "console"),
        "sentry_dsn": _text(config, "SENTRY_DSN"),
        "webhook_idempotency_ttl_h": _typed(config, "WEBHOOK_IDEMPOTENCY_TTL_H", float, 48.0, minimum=0.0001),
        "webhook_worker_interval_s": _typed(config, "WEBHOOK_WORKER_INTERVAL_S", float, 5.0, minimum=0.05),
        "personal_data_retention_days": _typed(config, "PERSONAL_DATA_RETENTION_DAYS", float, 30.0, minimum=0.0),
        "app_id": _typed(config, "YCLIENTS_APP_ID", int, 1, minimum=1),
        "yclients_timeout_s": _typed(config, "YCLIENTS_TIMEOUT_S", float, 30.0, minimum=0.1),
        "yclients_redirect_hosts": _list(config, "YCLIENTS_REDIRECT_HOSTS", "yclients.com,www.yclients.com"),
        "yclients_entity_webhook_urls": _list(config, "YCLIENTS_ENTITY_WEBHOOK_URLS", "", urls=True),
        "embed_in_yclients": _flag(config, "EMBED_IN_YCLIENTS", False),
        "yclients_frame_hosts": _list(config, "YCLIENTS_FRAME_HOSTS", "yclients.com,*.yclients.com"),
        "allow_unsigned_landing": _flag(config, "ALLOW_UNSIGNED_LANDING", False),
        "landing_require_pending": _flag(config, "LANDING_REQUIRE_PENDING", True),
        "use_transaction_activation": _flag(config, "USE_TRANSACTION_ACTIVATION", True),
        "activation_concurrency": _typed(config, "ACTIVATION_CONCURRENCY", int, 4, minimum=1),
        "activation_queue_wait_s": _typed(config, "ACTIVATION_QUEUE_WAIT_S", float, 2.0, minimum=0.0),
        "activation_attempts": _typed(config, "ACTIVATION_ATTEMPTS", int, 3, minimum=1),
        "default_timezone": _timezone(config, "DEFAULT_TIMEZONE", "Europe/Moscow"),
        "default_phone_region": _choice(config, "DEFAULT_PHONE_REGION", PHONE_REGIONS, "RU", upper=True),
    }


def _timezone(config: Config, name: str, default: str) -> str:
    """An IANA zone name the tz database knows (checked here, so a typo stops start-up)."""
    value = str(config(name, default=default)).strip() or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}: {value!r} is not a time zone name such as Europe/Moscow") from None
    return value


def _forwarded_allow_ips(config: Config, *, sandbox: bool) -> str | None:
    """Addresses or networks whose X-Forwarded-For/-Proto are believed: the proxy's.
    Nobody's by default in production, so a client cannot forge its address or scheme."""
    raw = config("FORWARDED_ALLOW_IPS", default="127.0.0.1" if sandbox else "")
    items = [item.strip() for item in str(raw).split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            # "*" too: believing everyone lets any client choose its address for the rate limits.
            raise SettingsError(f"FORWARDED_ALLOW_IPS: {item!r} is not an address or network") from None
    return ",".join(items) or None


def _serving(config: Config, *, sandbox: bool, yclients_timeout_s: float) -> dict[str, Any]:
    """`portal serve`: trusted proxies, keep-alive, body read and graceful shutdown timeouts."""
    shutdown_s = _typed(config, "SHUTDOWN_TIMEOUT_S", int, 45, minimum=1)
    if shutdown_s <= yclients_timeout_s:
        # An activation waits on the partner up to YCLIENTS_TIMEOUT_S: a shorter grace
        # period would cut it short at every deploy.
        raise SettingsError(f"SHUTDOWN_TIMEOUT_S ({shutdown_s}) must be above YCLIENTS_TIMEOUT_S"
                            f" ({yclients_timeout_s:g})")
    name = _text(config, "INSTANCE_NAME")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", name):
        raise SettingsError("INSTANCE_NAME must be 1-32 letters, digits, '.', '_' or '-'")
    return {
        "forwarded_allow_ips": _forwarded_allow_ips(config, sandbox=sandbox),
        "keepalive_timeout_s": _typed(config, "KEEPALIVE_TIMEOUT_S", int, 5, minimum=1),
        "shutdown_timeout_s": shutdown_s,
        "body_read_timeout_s": _typed(config, "BODY_READ_TIMEOUT_S", float, 10.0, minimum=0.1),
        "instance_name": name,
    }


def load_settings(env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> Settings:
    """Build settings from `env` (default: the process environment) and `.env`."""
    env = dict(os.environ if env is None else env)
    env_path = Path(env_file) if env_file else None
    config = Config(env_file=env_path if env_path and env_path.is_file() else None, environ=env)

    data_dir = Path(config("PORTAL_DATA_DIR", default=".portal"))
    sandbox = _flag(config, "SANDBOX", default=_text(config, "YCLIENTS_PARTNER_TOKEN") is None)
    base_url = _url(config, "PORTAL_BASE_URL", "http://127.0.0.1:8000") or "http://127.0.0.1:8000"
    marketplace_url = _url(config, "YCLIENTS_MARKETPLACE_URL",
                           f"{base_url}/sandbox" if sandbox else "https://yclients.com")
    operations = _operations(config)
    if operations["embed_in_yclients"] and not sandbox and not base_url.startswith("https://"):
        raise SettingsError("EMBED_IN_YCLIENTS needs an https:// PORTAL_BASE_URL (its cookie must be Secure)")
    return Settings(
        data_dir=data_dir, sandbox=sandbox, base_url=base_url, marketplace_url=marketplace_url or "",
        **_secrets(config, sandbox=sandbox, data_dir=data_dir, base_url=base_url),
        **_gateway(config, sandbox=sandbox),
        **_staff(config),
        **operations,
        **_serving(config, sandbox=sandbox, yclients_timeout_s=operations["yclients_timeout_s"]),
    )

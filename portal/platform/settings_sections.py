"""The portal's settings, each declared once, section by section (the WhatsApp gateway's are
in `settings_gateway.py`). A section's docstring heads its part of `.env.example`; the frozen
`Settings` (settings.py) is all sections together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from portal.platform.setting_values import (
    CHOICE,
    FLAG,
    FLOAT,
    HOSTS,
    INT,
    NETWORKS,
    PATH,
    RATE,
    RECEIVERS,
    TEXT,
    TIMEZONE,
    UPPER_CHOICE,
    URL,
    Setting,
)

DEFAULT_YCLIENTS_API_URL = "https://api.yclients.com/marketplace"
PHONE_REGIONS = tuple(sorted(phonenumbers.SUPPORTED_REGIONS))  # an unknown one stops start-up


@dataclass(frozen=True)
class Place:
    """where things are, and how the portal is served"""

    database_url: str | None = Setting(
        "DATABASE_URL", TEXT, None, "PostgreSQL DSN", production="**set** (compose sets it)",
        default_note="an embedded PostgreSQL in `PORTAL_DATA_DIR/pg`",
        example="postgresql://portal:secret@127.0.0.1:5432/portal").field()
    database_pool_size: int = Setting(
        "DATABASE_POOL_SIZE", INT, 10, "connections in the pool per instance (mind `max_connections` × replicas)",
        minimum=2).field()
    data_dir: Path = Setting(  # noqa: RUF009 (a Path is immutable)
        "PORTAL_DATA_DIR", PATH, Path(".portal"), "folder for the embedded database and demo mode's secrets",
        production="unused with `DATABASE_URL`", default_note="image: `/tmp/portal`").field()
    base_url: str = Setting(
        "PORTAL_BASE_URL", URL, "http://127.0.0.1:8000",
        "the public URL: links (the onboarding page YClients sends the owner back to), the webhook URL the"
        " gateway is told, the `Secure` cookie flag, the origin checked on POSTs", production="**set**, `https://…`").field()
    forwarded_allow_ips: str | None = Setting(
        "FORWARDED_ALLOW_IPS", NETWORKS, None,
        "comma-separated addresses or networks of the reverse proxy whose `X-Forwarded-For`/`-Proto` are"
        " believed; from anyone else they are ignored (`*` is refused)",
        production="**set** to the proxy's address (compose: nginx's)", default_note="nobody",
        demo_default="127.0.0.1", example="172.30.80.10").field()
    keepalive_timeout_s: int = Setting(
        "KEEPALIVE_TIMEOUT_S", INT, 5,
        "seconds an idle client connection is kept open between requests (uvicorn's `timeout_keep_alive`)",
        production="keep above nginx's upstream `keepalive_timeout` (4 s)", minimum=1).field()
    shutdown_timeout_s: int = Setting(
        "SHUTDOWN_TIMEOUT_S", INT, 45,
        "seconds a SIGTERM waits for requests in flight before cancelling them; must be above"
        " `YCLIENTS_TIMEOUT_S`, since an activation waits on the partner that long",
        production="below the orchestrator's grace period (compose: 65 s)", minimum=1).field()
    body_read_timeout_s: float = Setting(
        "BODY_READ_TIMEOUT_S", FLOAT, 10.0,
        "seconds a request's whole body may take to arrive once the portal reads it; slower: 408, logged as"
        " the client's (in production nginx cuts slow clients first)", minimum=0.1).field()
    instance_name: str | None = Setting(
        "INSTANCE_NAME", TEXT, None,
        "a name sent as the `X-Portal-Instance` response header, to tell instances apart behind the proxy"
        " (letters, digits, `.`, `_`, `-`; not a host name or address)", production="optional",
        default_note="no header", shape=(r"[A-Za-z0-9._-]{1,32}", "be 1-32 letters, digits, '.', '_' or '-'"),
        example="").field()
    default_timezone: str = Setting(
        "DEFAULT_TIMEZONE", TIMEZONE, "Europe/Moscow",
        "IANA time zone for times shown to owners (the link's expiry) and staff (every dashboard time, with"
        " the zone's abbreviation); YClients' landing data names none, so every salon uses this one; an"
        " unknown name stops start-up").field()
    default_phone_region: str = Setting(
        "DEFAULT_PHONE_REGION", UPPER_CHOICE, "RU",
        "country (ISO 3166 code) whose dialling habits an owner's typed phone number is read by"
        " (`8 029 …` in `BY`, `067 …` in `UA`) when the owner's own number in YClients' signed user data"
        " does not say; an unknown code stops start-up", choices=PHONE_REGIONS).field()


@dataclass(frozen=True)
class Secrets:
    """secrets (required in production; generated once in PORTAL_DATA_DIR in demo mode)"""

    jwt_secret: str = Setting(
        "JWT_SECRET", TEXT, "", "signs onboarding tokens (JWT, HS256); at least 32 characters",
        required_in_production=True, generated_in_demo=True).field()
    session_secret: str = Setting(
        "SESSION_SECRET", TEXT, "",
        "signs the session cookie (itsdangerous); at least 32 characters, differs from the others",
        required_in_production=True, generated_in_demo=True).field()
    api_key_secret: str = Setting(
        "API_KEY_SECRET", TEXT, "",
        "derives the per-install API key handed to YClients (never stored whole); at least 32 characters,"
        " differs from the others", required_in_production=True, generated_in_demo=True).field()
    health_check_token: str | None = Setting(
        "HEALTH_CHECK_TOKEN", TEXT, None,
        "Bearer token for the detailed `/marketplace/health` answer and `/metrics`", production="**set**",
        default_note="`/metrics` answers 401").field()


@dataclass(frozen=True)
class Marketplace:
    """YClients marketplace"""

    sandbox: bool = Setting(
        "SANDBOX", FLAG, True,
        "demo mode: the sandbox stands in for YClients, secrets are generated; `true` or `false` forces it",
        production="`false`", default_note="when no partner token is set, else `false`", example="false").field()
    partner_token: str | None = Setting(
        "YCLIENTS_PARTNER_TOKEN", TEXT, None,
        "signs landings (HMAC), authenticates partner calls and YClients webhooks",
        production="**required** (setting it turns production mode on)", required_in_production=True,
        generated_in_demo=True).field()
    app_id: int = Setting(
        "YCLIENTS_APP_ID", INT, 1, "our application id in the marketplace", production="**set**",
        minimum=1).field()
    yclients_api_url: str = Setting(
        "YCLIENTS_API_URL", URL, DEFAULT_YCLIENTS_API_URL, "the partner API's base URL",
        demo_default="{PORTAL_BASE_URL}/sandbox/api").field()
    # Hosts the partner's 301 may send the owner to, besides the host of yclients_api_url.
    yclients_redirect_hosts: tuple[str, ...] = Setting(
        "YCLIENTS_REDIRECT_HOSTS", HOSTS, ("yclients.com", "www.yclients.com"),
        "comma-separated hosts the install's 301 `Location` may point to, besides the host of"
        " `YCLIENTS_API_URL`; any other is a partner failure",
        production="add Altegio's hosts if you use it").field()
    # Entity webhook receivers sent at activation (never our lifecycle /webhook/yclients).
    yclients_entity_webhook_urls: tuple[str, ...] = Setting(
        "YCLIENTS_ENTITY_WEBHOOK_URLS", RECEIVERS, (),
        "comma-separated entity webhook receivers sent as `webhook_urls` when an install is finished"
        " (YClients then posts appointment, client, service… changes there); a URL ending in"
        " `/webhook/yclients`, the app's lifecycle Callback URL, is refused at start-up",
        production="the assistant's own receiver, if it has one", default_note="none sent").field()
    # Listed with is_iframe: the pages may be framed by these hosts only, the owner's cookie
    # is SameSite=None; Secure; Partitioned.
    embed_in_yclients: bool = Setting(
        "EMBED_IN_YCLIENTS", FLAG, False,
        "the app is listed with `is_iframe` (it opens inside YClients' app card): pages may be framed by"
        " `YCLIENTS_FRAME_HOSTS` only, the owner's cookie is `SameSite=None; Secure; Partitioned`;"
        " off: `frame-ancestors 'self'`, `SameSite=Lax`",
        production="`true` only with `is_iframe` and an `https://` `PORTAL_BASE_URL`").field()
    yclients_frame_hosts: tuple[str, ...] = Setting(
        "YCLIENTS_FRAME_HOSTS", HOSTS, ("yclients.com", "*.yclients.com"),
        "comma-separated CSP host sources (`*.` and a port allowed) that may frame the portal when"
        " `EMBED_IN_YCLIENTS` is on", production="add `alteg.io,*.alteg.io` for Altegio").field()
    marketplace_url: str = Setting(
        "YCLIENTS_MARKETPLACE_URL", URL, "https://yclients.com",
        "where an owner is sent to start again (expired window) or go back to",
        demo_default="{PORTAL_BASE_URL}/sandbox").field()
    yclients_timeout_s: float = Setting(
        "YCLIENTS_TIMEOUT_S", FLOAT, 30.0, "seconds for one partner call (connect, read, overall)",
        production="keep below nginx's `proxy_read_timeout` (60 s)", minimum=0.1).field()
    allow_unsigned_landing: bool = Setting(
        "ALLOW_UNSIGNED_LANDING", FLAG, False,
        "accept landings without `user_data`/`user_data_sign` (logged as such)", production="`false`").field()
    # Bind a salon's owner user only while YClients reports the install `pending`.
    landing_require_pending: bool = Setting(
        "LANDING_REQUIRE_PENDING", FLAG, True,
        "bind a salon to the landing's YClients user only while YClients reports its install `pending`"
        " (see \"Who may open a salon\"); off: the first signed user binds it, staff see it \"unconfirmed\"",
        production="`true`, unless your account never reports `pending`").field()


@dataclass(frozen=True)
class Activation:
    """activation"""

    use_transaction_activation: bool = Setting(
        "USE_TRANSACTION_ACTIVATION", FLAG, True,
        "`true`: the advisory-locked transaction; `false`: the legacy step-by-step path (rollback aid)",
        production="`true`").field()
    activation_concurrency: int = Setting(
        "ACTIVATION_CONCURRENCY", INT, 4,
        "activations running at once per instance; more wait briefly, then get 503 + Retry-After",
        minimum=1).field()
    activation_queue_wait_s: float = Setting(
        "ACTIVATION_QUEUE_WAIT_S", FLOAT, 2.0, "seconds a request over that bound waits for an activation slot",
        minimum=0.0).field()
    activation_attempts: int = Setting(
        "ACTIVATION_ATTEMPTS", INT, 3,
        "tries of the whole activation transaction on serialization failure, deadlock or a lost database"
        " connection (exponential backoff with jitter in between)", minimum=1).field()


def _rate_limit(env: str, default: str, help: str) -> str:
    declared: str = Setting(env, RATE, default, f"{help}; a rate: `N/second`, `N/minute`, `N/hour` or `N/day`").field()
    return declared


@dataclass(frozen=True)
class Staff:
    """support staff, operators"""

    admin_username: str | None = Setting(
        "ADMIN_USERNAME", TEXT, None, "the staff dashboard's sign-in name (`/admin/login`)",
        production="**set**", default_note="no dashboard sign-in", example="support").field()
    admin_password_hash: str | None = Setting(
        "ADMIN_PASSWORD_HASH", TEXT, None, "its password's hash, made with `python -m portal hash-password`",
        production="**set**", default_note="no dashboard sign-in", example="scrypt$...",
        shape=(r"scrypt\$.*", "be made by `python -m portal hash-password` (scrypt$...)")).field()
    admin_api_key: str | None = Setting(
        "ADMIN_API_KEY", TEXT, None, "the JSON admin API's key (`X-API-Key` header), at least 24 characters",
        production="set if used", default_note="API closed", min_length=24).field()
    admin_session_ttl_s: int = Setting(
        "ADMIN_SESSION_TTL_S", INT, 8 * 3600, "seconds a staff sign-in lasts", minimum=60).field()
    admin_rate_limit: str = _rate_limit(
        "ADMIN_RATE_LIMIT", "100/minute", "admin API and dashboard actions per client")
    login_rate_limit: str = _rate_limit(
        "LOGIN_RATE_LIMIT", "10/minute",
        "failed staff credentials per client (wrong passwords and wrong admin API keys each in a count of"
        " their own)")
    login_user_client_rate_limit: str = _rate_limit(
        "LOGIN_USER_CLIENT_RATE_LIMIT", "5/minute", "failed sign-ins per (user name, client)")
    login_user_rate_limit: str = _rate_limit(
        "LOGIN_USER_RATE_LIMIT", "100/hour",
        "failed sign-ins per user name from all clients: past this ceiling a client that already failed at"
        " the name waits, one that has not is still checked, so guessers never lock the real person out")
    owner_rate_limit: str = _rate_limit("OWNER_RATE_LIMIT", "60/minute", "owner QR/activation requests per salon")
    webhook_rate_limit: str = _rate_limit(
        "WEBHOOK_RATE_LIMIT", "120/minute",
        "each webhook per sending client (`/webhook/whatsapp` and `/webhook/yclients` counted apart)")
    landing_rate_limit: str = _rate_limit("LANDING_RATE_LIMIT", "30/minute", "marketplace landings per client")
    redis_url: str | None = Setting(
        "REDIS_URL", TEXT, None,
        "rate-limit counts in Redis (shared by every worker and instance); if the store is unreachable the"
        " portal counts in memory per process and health says \"degraded\"",
        production="optional: for very high webhook or landing rates",
        default_note="counts in PostgreSQL, shared just the same", example="redis://127.0.0.1:6379/0",
        shape=(r"(redis|rediss|unix)://.*", "start with redis://, rediss:// or unix://")).field()
    sentry_dsn: str | None = Setting(
        "SENTRY_DSN", TEXT, None, "error reports to Sentry (personal data scrubbed)", default_note="off").field()


@dataclass(frozen=True)
class Upkeep:
    """YClients webhooks (uninstall, freeze), the background worker, personal data"""

    webhook_idempotency_ttl_h: float = Setting(
        "WEBHOOK_IDEMPOTENCY_TTL_H", FLOAT, 48.0,
        "hours a YClients delivery's idempotency key is remembered (24-48 is sensible); older keys are purged",
        minimum=0.0001).field()
    webhook_worker_interval_s: float = Setting(
        "WEBHOOK_WORKER_INTERVAL_S", FLOAT, 5.0,
        "seconds between rounds of the worker (retries of unfinished deliveries and gateway cleanups, purges)",
        minimum=0.05).field()
    personal_data_retention_days: float = Setting(
        "PERSONAL_DATA_RETENTION_DAYS", FLOAT, 30.0,
        "days after an uninstall before the worker erases the owner's name, phone, e-mail and WhatsApp"
        " number (staff can erase them at once from the dashboard)", minimum=0.0).field()


@dataclass(frozen=True)
class Logs:
    """logs"""

    log_level: str = Setting(
        "LOG_LEVEL", UPPER_CHOICE, "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`",
        choices=("DEBUG", "INFO", "WARNING", "ERROR")).field()
    log_format: str = Setting(
        "LOG_FORMAT", CHOICE, "console", "`console` or `json` (one JSON object per line)",
        production="`json`", default_note="image: `json`", choices=("console", "json")).field()

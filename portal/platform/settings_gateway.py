"""The WhatsApp gateway's settings, each declared once: which gateway, how the portal waits
for it, the circuit breaker around session starts, and the demo simulator's timings."""

from __future__ import annotations

from dataclasses import dataclass

from portal.platform.setting_values import CHOICE, FLOAT, INT, SWITCH, TEXT, URL, Setting

GATEWAYS = ("simulator", "waha", "evolution")


@dataclass(frozen=True)
class Gateway:
    """WhatsApp gateway"""

    whatsapp_gateway: str = Setting(
        "WHATSAPP_GATEWAY", CHOICE, "waha",
        "`waha`, `evolution` (Evolution API v2) or `simulator` (demo mode only; refused in production)",
        production="`waha` or `evolution`", choices=GATEWAYS, demo_default="simulator").field()
    waha_url: str | None = Setting(
        "WAHA_URL", URL, None, "WAHA's base URL", production="**required** with WAHA (compose: `http://waha:3000`)",
        example="http://127.0.0.1:3000").field()
    waha_api_key: str | None = Setting(
        "WAHA_API_KEY", TEXT, None, "key sent to WAHA as `X-Api-Key`", production="**set**").field()
    waha_webhook_hmac_key: str | None = Setting(
        "WAHA_WEBHOOK_HMAC_KEY", TEXT, None,
        "key WAHA signs its `session.status` webhooks with (HMAC-SHA512; in WAHA Core since 2026.6.1, when"
        " WAHA Plus was merged into Core); production refuses to start with webhooks on and neither this nor"
        " `WAHA_WEBHOOK_TOKEN`", production="**set** (WAHA 2026.6.1+), else `WAHA_WEBHOOK_TOKEN`",
        default_note="demo mode accepts unsigned webhooks").field()
    waha_webhook_token: str | None = Setting(
        "WAHA_WEBHOOK_TOKEN", TEXT, None,
        "shared secret (24+ characters) WAHA sends as the custom header `X-Webhook-Token` (configured by the"
        " portal on session creation), for WAHA before 2026.6.1, whose Core did not sign; compared in"
        " constant time", production="**set** with WAHA before 2026.6.1", min_length=24).field()
    waha_webhooks: bool = Setting(
        "WAHA_WEBHOOKS", SWITCH, True,
        "`on`: WAHA is asked to send `session.status` webhooks (hints: the session is read back from WAHA"
        " before anything changes); `off`: polling only, every `WHATSAPP_REFRESH_S`").field()
    waha_timeout_s: float = Setting(  # every gateway call's timeout, Evolution's too
        "WAHA_TIMEOUT_S", FLOAT, 10.0, "seconds for one gateway call (WAHA's or Evolution API's)",
        minimum=0.1).field()
    evolution_url: str | None = Setting(
        "EVOLUTION_URL", URL, None, "Evolution API's base URL (`WHATSAPP_GATEWAY=evolution`)",
        production="**required** with Evolution", example="http://127.0.0.1:8080").field()
    evolution_api_key: str | None = Setting(
        "EVOLUTION_API_KEY", TEXT, None, "Evolution's global API key, sent as the `apikey` header",
        production="**set** with Evolution").field()
    evolution_webhook_token: str | None = Setting(
        "EVOLUTION_WEBHOOK_TOKEN", TEXT, None,
        "shared secret (24+ characters) the portal puts in each instance's webhook `headers` as"
        " `X-Webhook-Token`; Evolution sends it with every event (its webhooks are not signed); compared in"
        " constant time", production="**required** with Evolution",
        default_note="demo mode accepts unauthenticated events", min_length=24).field()
    whatsapp_safety_poll_s: float = Setting(
        "WHATSAPP_SAFETY_POLL_S", FLOAT, 10.0,
        "with webhooks on: seconds between safety sweeps, in case a webhook is lost (one instance at a time"
        " lists every session at the gateway in one call and re-reads only the links that differ)",
        minimum=0.1).field()
    whatsapp_retry_s: float = Setting(
        "WHATSAPP_RETRY_S", FLOAT, 5.0,
        "a failed WhatsApp start retries by itself: the first pause in seconds, doubling up to a minute, six times",
        minimum=0.5).field()
    # Gateway sessions waiting for a scan at once, beyond which owners see the busy screen.
    max_waiting_sessions: int = Setting(
        "MAX_WAITING_SESSIONS", INT, 200,
        "gateway sessions waiting for a scan at once (starting, QR shown, linking; changed in the last"
        " 5 minutes); an owner starting one more sees the \"busy, try again shortly\" screen",
        production="size to the gateway host", minimum=1).field()
    qr_poll_interval_s: float = Setting(
        "QR_POLL_INTERVAL_S", FLOAT, 2.0, "seconds between the browser's polls of the WhatsApp step",
        minimum=0.2).field()
    gateway_refresh_s: float = Setting(
        "WHATSAPP_REFRESH_S", FLOAT, 1.0,
        "at most one gateway read per salon per this many seconds, across all tabs and instances",
        minimum=0.0).field()
    qr_wait_initial_s: float = Setting(
        "QR_WAIT_INITIAL_S", FLOAT, 1.0, "waiting for the first QR after a start: the first pause in seconds",
        minimum=0.01).field()
    qr_wait_max_s: float = Setting(
        "QR_WAIT_MAX_S", FLOAT, 5.0, "waiting for the first QR: the longest pause (each is ×1.5 the last)",
        minimum=0.01).field()
    qr_wait_attempts: int = Setting(
        "QR_WAIT_ATTEMPTS", INT, 5, "waiting for the first QR: how many looks", minimum=1).field()


@dataclass(frozen=True)
class Breaker:
    """circuit breaker around "start a session and get its first QR\""""

    qr_breaker_failure_threshold: int = Setting(
        "QR_BREAKER_FAILURE_THRESHOLD", INT, 5, "consecutive failures that open the circuit breaker",
        minimum=1).field()
    qr_breaker_reset_timeout_s: float = Setting(
        "QR_BREAKER_RESET_TIMEOUT_S", FLOAT, 60.0, "seconds open before trial calls are let through (half-open)",
        minimum=0.1).field()
    qr_breaker_call_timeout_s: float = Setting(
        "QR_BREAKER_CALL_TIMEOUT_S", FLOAT, 30.0,
        "seconds before a session start is cancelled and counted as a failure", production="below nginx's 60 s",
        minimum=0.1).field()
    qr_breaker_success_threshold: int = Setting(
        "QR_BREAKER_SUCCESS_THRESHOLD", INT, 2,
        "successful trials that close it again (also: trials allowed at once)", minimum=1).field()


@dataclass(frozen=True)
class Simulator:
    """the WhatsApp simulator (demo mode and tests)"""

    sim_starting_s: float = Setting(
        "SIMULATOR_STARTING_S", FLOAT, 2.0, "seconds a simulated session takes to start", production="unused",
        minimum=0.0).field()
    sim_qr_first_ttl_s: float = Setting(
        "SIMULATOR_QR_FIRST_TTL_S", FLOAT, 60.0, "seconds the simulator's first QR lasts", production="unused",
        minimum=0.1).field()
    sim_qr_next_ttl_s: float = Setting(
        "SIMULATOR_QR_NEXT_TTL_S", FLOAT, 20.0, "seconds each next QR lasts", production="unused",
        minimum=0.1).field()
    sim_qr_count: int = Setting(
        "SIMULATOR_QR_COUNT", INT, 6, "QRs the simulator shows before it gives up", production="unused",
        minimum=1).field()
    sim_linking_s: float = Setting(
        "SIMULATOR_LINKING_S", FLOAT, 2.0, "seconds a scanned simulated phone takes to link", production="unused",
        minimum=0.0).field()

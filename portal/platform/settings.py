"""The portal's settings: read once from the environment into one frozen object.

Every setting is declared once, on a field of its section (`settings_sections.py`,
`settings_gateway.py`: name, kind, default, bounds, help, what production needs), and
`load_settings` reads them all from that declaration; what is left here are the rules
between settings (demo mode's defaults and generated secrets, production's requirements).
`load_settings(env)` takes the environment as a mapping (and reads `.env` beside it when
present), so every test builds the settings it needs and no two apps share anything.
A bad value stops start-up with one line naming the setting (`SettingsError`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.config import Config

from portal.platform.demo_secrets import load_demo_secrets
from portal.platform.setting_values import Setting, declared
from portal.platform.setting_values import SettingsError as SettingsError  # raised by load_settings
from portal.platform.settings_gateway import Breaker, Gateway, Simulator
from portal.platform.settings_sections import Activation, Logs, Marketplace, Place, Secrets, Staff, Upkeep

# In the order `.env.example` and docs/deploy.md list them; a setting's default may name
# one from an earlier section (`{PORTAL_BASE_URL}/sandbox`).
SECTIONS: tuple[type, ...] = (Place, Secrets, Marketplace, Gateway, Breaker, Simulator, Activation, Staff, Upkeep,
                              Logs)


@dataclass(frozen=True)
class Settings(Logs, Upkeep, Staff, Activation, Simulator, Breaker, Gateway, Marketplace, Secrets, Place):
    # Fixed in code, not settings (docs/deploy.md says so): fields only so tests may change them.
    health_db_timeout_s: float = 2.0
    max_body_bytes: int = 64 * 1024
    onboarding_token_ttl_s: int = 3600

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


def _read_all(config: Config, sandbox: bool) -> dict[str, Any]:
    """Every declared setting but SANDBOX, by field name: set ones read, unset ones defaulted
    (demo mode's default in demo mode), secrets demo mode may invent left for `_secrets`."""
    values: dict[str, Any] = {"sandbox": sandbox}
    by_env: dict[str, Any] = {"SANDBOX": sandbox}
    for section in SECTIONS:
        for name, spec in declared(section):
            if name == "sandbox":
                continue
            raw = config(spec.env, default=None)
            default = spec.demo_default if sandbox and spec.demo_default is not None else spec.default
            if isinstance(default, str):
                default = default.format_map(by_env)
            values[name] = by_env[spec.env] = default if raw is None else spec.read(str(raw))
    return values


def _secrets(values: dict[str, Any], specs: list[tuple[str, Setting]]) -> None:
    """Demo mode invents the secrets once (kept in the data dir); production requires them,
    long and distinct."""
    if values["sandbox"]:
        generated = [(name, s.env) for name, s in specs if s.generated_in_demo]
        demo = load_demo_secrets(values["data_dir"], [env for _, env in generated])
        # The sandbox stands in for YClients, so the partner token is ours to invent too.
        values.update({name: values[name] or demo[env] for name, env in generated})
        return
    for name, spec in specs:
        if spec.required_in_production and not values[name]:
            raise SettingsError(f"{spec.env} is required in production mode (SANDBOX is off)")
    own = ("jwt_secret", "session_secret", "api_key_secret")
    for name, spec in specs:
        if name in own and len(values[name]) < 32:
            raise SettingsError(f"{spec.env} must be at least 32 characters")
    if len({values[name] for name in own}) < 3:
        raise SettingsError("JWT_SECRET, SESSION_SECRET and API_KEY_SECRET must all differ")


def _gateway(v: dict[str, Any]) -> None:
    """The chosen WhatsApp gateway has what it needs, and production's webhooks are authenticated."""
    gateway, sandbox = v["whatsapp_gateway"], v["sandbox"]
    if gateway == "simulator" and not sandbox:
        raise SettingsError("WHATSAPP_GATEWAY=simulator is refused in production mode (SANDBOX is off)")
    if gateway == "waha" and not v["waha_url"]:
        raise SettingsError("WAHA_URL is required when WHATSAPP_GATEWAY=waha")
    if gateway == "waha" and v["waha_webhooks"] and not sandbox and not (
            v["waha_webhook_hmac_key"] or v["waha_webhook_token"]):
        # An unauthenticated webhook endpoint lets anyone push "events" at us.
        raise SettingsError("WAHA webhooks need WAHA_WEBHOOK_HMAC_KEY or WAHA_WEBHOOK_TOKEN"
                            " in production mode, or WAHA_WEBHOOKS=off")
    if gateway == "evolution" and not v["evolution_url"]:
        raise SettingsError("EVOLUTION_URL is required when WHATSAPP_GATEWAY=evolution")
    if gateway == "evolution" and not sandbox and v["evolution_webhook_token"] is None:
        raise SettingsError("EVOLUTION_WEBHOOK_TOKEN is required with WHATSAPP_GATEWAY=evolution in production mode")


def _serving(v: dict[str, Any]) -> None:
    """A deploy's grace period outlasts a partner call; a framed app's cookie can be Secure."""
    if v["shutdown_timeout_s"] <= v["yclients_timeout_s"]:
        # An activation waits on the partner up to YCLIENTS_TIMEOUT_S: a shorter grace
        # period would cut it short at every deploy.
        raise SettingsError(f"SHUTDOWN_TIMEOUT_S ({v['shutdown_timeout_s']}) must be above YCLIENTS_TIMEOUT_S"
                            f" ({v['yclients_timeout_s']:g})")
    if v["embed_in_yclients"] and not v["sandbox"] and not v["base_url"].startswith("https://"):
        raise SettingsError("EMBED_IN_YCLIENTS needs an https:// PORTAL_BASE_URL (its cookie must be Secure)")


def load_settings(env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> Settings:
    """Build settings from `env` (default: the process environment) and `.env`."""
    env = dict(os.environ if env is None else env)
    env_path = Path(env_file) if env_file else None
    config = Config(env_file=env_path if env_path and env_path.is_file() else None, environ=env)

    specs = declared(Settings)
    sandbox_spec = dict(specs)["sandbox"]
    # Unless SANDBOX says otherwise, demo mode is on exactly when no partner token is set.
    raw_sandbox = config(sandbox_spec.env, default=None)
    sandbox = not config("YCLIENTS_PARTNER_TOKEN", default=None) if raw_sandbox is None \
        else bool(sandbox_spec.read(str(raw_sandbox)))
    values = _read_all(config, sandbox)
    _secrets(values, specs)
    _gateway(values)
    _serving(values)
    return Settings(**values)

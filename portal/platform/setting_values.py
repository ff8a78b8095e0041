"""Reading one setting's value: a choice, a number with a floor, a flag, optional text, a URL.

Each reader raises `SettingsError` naming the setting, so a bad value stops start-up with
one line. `settings.py` says which settings there are; this module only how a value reads.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

from starlette.config import Config

N = TypeVar("N", int, float)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it in one line."""


def _choice(config: Config, name: str, choices: tuple[str, ...], default: str, upper: bool = False) -> str:
    value = str(config(name, default=default)).strip()
    value = value.upper() if upper else value.lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value


def _typed(config: Config, name: str, cast: type[N], default: N, minimum: N | None = None) -> N:
    try:
        value: N = config(name, cast=cast, default=default)
    except ValueError:
        raise SettingsError(f"{name} must be a {cast.__name__}, got {config(name)!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(config: Config, name: str, default: bool) -> bool:
    try:
        return bool(config(name, cast=bool, default=default))
    except ValueError:
        raise SettingsError(f"{name} must be true or false, got {config(name)!r}") from None


def _list(config: Config, name: str, default: str, *, urls: bool = False) -> tuple[str, ...]:
    """Comma-separated hosts (lowercased), or with `urls` http(s) URLs (never the lifecycle
    endpoint: entity webhooks posted there would be refused)."""
    items = tuple(i.strip() for i in str(config(name, default=default)).split(",") if i.strip())
    for parts in (urlsplit(i) for i in items if urls):
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.rstrip("/").endswith(
                "/webhook/yclients"):
            raise SettingsError(f"{name}: {parts.geturl()!r} is not an http(s) URL of an entity webhook receiver")
    return items if urls else tuple(i.lower() for i in items)


def _text(config: Config, name: str) -> str | None:
    """An optional string setting: unset and empty both mean None."""
    value = config(name, default=None)
    return str(value) if value else None


def _url(config: Config, name: str, default: str | None) -> str | None:
    value: str | None = config(name, default=default)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return str(value).rstrip("/")

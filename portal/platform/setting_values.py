"""One setting's declaration, and how its value reads from the environment's text.

A `Setting` says everything about one environment variable once: its name, how its text
reads (`Kind`), its default (and demo mode's, when that differs), its bounds or choices, a
line of help and what production needs of it. `Setting(...).field()` puts it on a field of
the frozen `Settings`, so the loader, `.env.example` and docs/deploy.md's table are all
driven from that one declaration (scripts/settings_docs.py writes the two documents).

Each reader raises `SettingsError` naming the setting, so a bad value stops start-up with
one line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it in one line."""


def _show(value: Any) -> str:
    """A value written back as the environment's text (`.env.example`, the deploy guide)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Kind:
    """How a set variable's text becomes the field's value, and back for the documents."""

    read: Callable[[Setting, str], Any]
    show: Callable[[Any], str] = _show


@dataclass(frozen=True)
class Setting:
    """One environment variable, declared once.

    `default` is the value when the variable is unset; `demo_default` replaces it in demo
    mode (a string may name earlier settings, `{PORTAL_BASE_URL}/sandbox`). `production`
    is the deploy guide's word on it; `required_in_production` makes the loader refuse to
    start without it, `generated_in_demo` has demo mode invent it once.
    """

    env: str
    kind: Kind
    default: Any
    help: str
    production: str = ""
    default_note: str = ""  # what "unset" or the default means, when the value alone does not say
    example: str | None = None  # for .env.example when the default is unset or not a good line
    minimum: int | float | None = None
    choices: tuple[str, ...] = ()
    min_length: int | None = None
    shape: tuple[str, str] | None = None  # (pattern the whole value matches, "must ..." when not)
    demo_default: Any = None
    required_in_production: bool = False
    generated_in_demo: bool = False

    def field(self) -> Any:
        """The dataclass field carrying this declaration (typed Any: it stands for the default)."""
        return dataclasses.field(default=self.default, metadata={"setting": self})

    def read(self, raw: str) -> Any:
        """The value of a variable that is set (possibly to the empty string)."""
        value = self.kind.read(self, raw)
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                raise SettingsError(f"{self.env} must be at least {self.min_length} characters")
            if self.shape is not None and not re.fullmatch(self.shape[0], value, re.DOTALL):
                raise SettingsError(f"{self.env} must {self.shape[1]}")
        return value

    def shown(self, value: Any) -> str:
        return self.kind.show(value)


def declared(cls: type) -> list[tuple[str, Setting]]:
    """The (field name, declaration) of each declared field of a settings dataclass."""
    return [(f.name, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata]


def _text(s: Setting, raw: str) -> str | None:
    return raw or None  # unset and empty both mean None


def _url(s: Setting, raw: str) -> str:
    """An http(s) URL without its trailing slash: every URL setting is normalised here, once."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{s.env} must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


def _number(cast: type[int] | type[float]) -> Callable[[Setting, str], Any]:
    def read(s: Setting, raw: str) -> int | float:
        try:
            value = cast(raw)
        except ValueError:
            raise SettingsError(f"{s.env} must be a {cast.__name__}, got {raw!r}") from None
        if s.minimum is not None and value < s.minimum:
            raise SettingsError(f"{s.env} must be at least {s.minimum}, got {value}")
        return value
    return read


_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _flag(s: Setting, raw: str) -> bool:
    if raw.lower() not in _FLAGS:
        raise SettingsError(f"{s.env} must be true or false, got {raw!r}")
    return _FLAGS[raw.lower()]


def _choice(upper: bool) -> Callable[[Setting, str], str]:
    def read(s: Setting, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in s.choices:
            raise SettingsError(f"{s.env}={value!r} is not one of: {', '.join(s.choices)}")
        return value
    return read


_lower_choice = _choice(upper=False)


def _switch(s: Setting, raw: str) -> bool:
    return _lower_choice(dataclasses.replace(s, choices=("on", "off")), raw) == "on"


def _items(raw: str) -> tuple[str, ...]:
    return tuple(i.strip() for i in raw.split(",") if i.strip())


def _hosts(s: Setting, raw: str) -> tuple[str, ...]:
    return tuple(i.lower() for i in _items(raw))


def _receivers(s: Setting, raw: str) -> tuple[str, ...]:
    """http(s) URLs, never the lifecycle endpoint: entity webhooks posted there would be refused."""
    items = _items(raw)
    for parts in map(urlsplit, items):
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.rstrip("/").endswith(
                "/webhook/yclients"):
            raise SettingsError(f"{s.env}: {parts.geturl()!r} is not an http(s) URL of an entity webhook receiver")
    return items


_RATE = re.compile(r"\d{1,7}\s*/\s*(\d+\s*)?(second|minute|hour|day)s?")


def _rate(s: Setting, raw: str) -> str:
    value = raw.strip()
    if not _RATE.fullmatch(value):
        raise SettingsError(f"{s.env}={value!r} is not a rate like 100/minute")
    return value


def _timezone(s: Setting, raw: str) -> str:
    """An IANA zone name the tz database knows (checked here, so a typo stops start-up)."""
    value = raw.strip() or str(s.default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{s.env}: {value!r} is not a time zone name such as Europe/Moscow") from None
    return value


def _networks(s: Setting, raw: str) -> str | None:
    """Addresses or networks, comma-separated; "*" too is refused: believing everyone lets
    any client choose its address for the rate limits."""
    items = _items(raw)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(f"{s.env}: {item!r} is not an address or network") from None
    return ",".join(items) or None


TEXT = Kind(_text)
URL = Kind(_url)
INT = Kind(_number(int))
FLOAT = Kind(_number(float))
FLAG = Kind(_flag)
CHOICE = Kind(_lower_choice)
UPPER_CHOICE = Kind(_choice(upper=True))
SWITCH = Kind(_switch, show=lambda on: "on" if on else "off")
HOSTS = Kind(_hosts)
RECEIVERS = Kind(_receivers)
RATE = Kind(_rate)
TIMEZONE = Kind(_timezone)
NETWORKS = Kind(_networks)
PATH = Kind(lambda s, raw: Path(raw))

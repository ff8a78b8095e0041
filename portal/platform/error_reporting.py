"""Error reporting to Sentry, with personal data and secrets removed before anything leaves.

Owns: ``init_sentry`` (turns reporting on when a DSN is configured), ``scrub`` (the
``before_send`` hook every event passes through) and ``report_message`` (a tagged message,
silently skipped when reporting is off).

State: this module keeps none of its own. sentry_sdk itself is process-global -- ``init``
installs one client on its global scope and its integrations patch Starlette/httpx/asyncpg
once per process -- so the *first* app that calls ``init_sentry`` decides the DSN,
environment and release for every app in the process. That is sentry_sdk's design, not ours.

Sentry's own defaults with ``send_default_pii=False`` already drop cookies, user IPs and
bodies of some kinds; ``scrub`` does not rely on that: it removes query strings, cookies,
credential headers and any value whose key names a secret or personal datum (token, secret,
password, api_key, user_data, sign(ature), phone, email) from the request, ``extra``,
``contexts`` and stack-frame local variables.

Stack-frame local variables are not collected at all (``include_local_variables=False``):
every ASGI frame holds the raw ``scope`` (query string as bytes, headers as byte pairs) and
handlers hold phones, URLs with tokens, API keys -- values a key-based scrub cannot
recognise. ``scrub`` still cleans frame ``vars`` should someone turn them back on, but that
is a second line, not a guarantee.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import sentry_sdk
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.types import Event, Hint

SCRUBBED = "[scrubbed]"

# Matched against keys with "-" turned into "_" and case ignored, as a substring: over-
# scrubbing a harmless "design" costs a debugging hint, under-scrubbing leaks a phone number.
# "sign" covers YClients' `user_data_sign` and webhook signature headers; "passw" covers
# password/passwd.
_SENSITIVE_KEY = re.compile(
    r"token|secret|passw|api_?key|user_?data|sign|phone|e_?mail|authorization|cookie", re.I)
# Headers that are credentials whatever they are called in a given request.
_SENSITIVE_HEADERS = {"authorization", "proxy_authorization", "x_api_key", "cookie", "set_cookie"}
# In frame locals: the ASGI scope / Starlette request internals, whatever the variable name.
_REQUEST_SHAPED_KEYS = {"query_string", "headers", "cookies"}
_MAX_DEPTH = 20  # events are JSON-shaped; guards against pathological nesting


def _sensitive(key: Any) -> bool:
    return isinstance(key, str) and bool(_SENSITIVE_KEY.search(key.replace("-", "_")))


def _scrub_values(value: Any, depth: int = 0, also: frozenset[str] | set[str] = frozenset()) -> Any:
    """Copy of ``value`` where every dict entry under a sensitive key (or a key in ``also``)
    is SCRUBBED."""
    if depth > _MAX_DEPTH:
        return SCRUBBED
    if isinstance(value, dict):
        return {k: SCRUBBED if _sensitive(k) or k in also else _scrub_values(v, depth + 1, also)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_values(v, depth + 1, also) for v in value]
    return value


def _scrub_headers(headers: Any) -> Any:
    # Sentry sends headers as a dict; tolerate the [name, value] pair form too.
    def hide(name: Any) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower().replace("-", "_") in _SENSITIVE_HEADERS or _sensitive(name)

    if isinstance(headers, dict):
        return {k: SCRUBBED if hide(k) else v for k, v in headers.items()}
    if isinstance(headers, list):
        return [[p[0], SCRUBBED] if isinstance(p, (list, tuple)) and p and hide(p[0]) else p
                for p in headers]
    return headers


def _scrub_request(request: dict[str, Any]) -> None:
    # Query strings carry tokens (onboarding links, user_data_sign) and phone numbers.
    if request.get("query_string"):
        request["query_string"] = SCRUBBED
    url = request.get("url")
    if isinstance(url, str) and ("?" in url or "#" in url):
        request["url"] = re.split(r"[?#]", url, maxsplit=1)[0]
    if request.get("cookies"):
        request["cookies"] = SCRUBBED
    if "headers" in request:
        request["headers"] = _scrub_headers(request["headers"])
    if isinstance(request.get("data"), (dict, list)):
        request["data"] = _scrub_values(request["data"])
    if isinstance(request.get("env"), dict):
        request["env"] = _scrub_values(request["env"])


def _scrub_frames(event: dict[str, Any]) -> None:
    # Only reached if include_local_variables is turned back on (see the module docstring).
    containers = []
    exception = event.get("exception")
    if isinstance(exception, dict):
        containers += [v for v in exception.get("values") or [] if isinstance(v, dict)]
    threads = event.get("threads")
    if isinstance(threads, dict):
        containers += [v for v in threads.get("values") or [] if isinstance(v, dict)]
    for container in containers:
        stacktrace = container.get("stacktrace")
        if not isinstance(stacktrace, dict):
            continue
        for frame in stacktrace.get("frames") or []:
            if isinstance(frame, dict) and isinstance(frame.get("vars"), dict):
                frame["vars"] = _scrub_values(frame["vars"], also=_REQUEST_SHAPED_KEYS)


def scrub(event: dict[str, Any], hint: dict[str, Any] | None) -> dict[str, Any]:
    """``before_send`` hook: remove personal data and secrets from ``event`` (in place) and
    return it. Never drops the event: the error itself is what we want to see."""
    request = event.get("request")
    if isinstance(request, dict):
        _scrub_request(request)
    for section in ("extra", "contexts"):
        if isinstance(event.get(section), dict):
            event[section] = _scrub_values(event[section])
    _scrub_frames(event)
    return event


def init_sentry(dsn: str | None, *, environment: str, release: str) -> bool:
    """Turn on Sentry when ``dsn`` is set; return whether it is on.

    Errors only (``traces_sample_rate=0``), no default PII, no frame locals, every event
    through ``scrub``.
    Process-global (see the module docstring): call once per process.
    """
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        send_default_pii=False,
        # sentry_sdk types the event as a TypedDict; ``scrub`` walks it as the plain dict it
        # is at run time (and is passed itself, so a test can see it is the hook).
        before_send=cast("Callable[[Event, Hint], Event | None]", scrub),
        traces_sample_rate=0,
        # Frame locals carry the raw ASGI scope and handler values (phones, tokens) that no
        # key-based scrub can recognise; a traceback without them is still a traceback.
        include_local_variables=False,
        # Listed explicitly (defaults) so the Starlette hook-up does not depend on
        # auto-detection; the other default/auto integrations stay as sentry_sdk has them.
        integrations=[StarletteIntegration()],
    )
    return sentry_sdk.get_client().is_active()


def report_message(message: str, **tags: str) -> None:
    """Send ``message`` with ``tags`` to Sentry; a no-op when Sentry is not initialised.

    ``message`` and tag values are sent as they are (``scrub`` sees keys, not free text):
    keep phone numbers, tokens and emails out of them.
    """
    if not sentry_sdk.get_client().is_active():
        return
    # A fresh scope: these tags belong to this message, not to later events of the request.
    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        scope.capture_message(message, level="warning")

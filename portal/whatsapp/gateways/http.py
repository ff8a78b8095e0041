"""The HTTP the gateway adapters share: one pooled client per gateway and one mapping of
a request's outcome onto the `GatewayError` classes, plus the webhook checks every
adapter makes (`WebhookGate`: the shared-secret header; a JSON-object body).

Each adapter composes a `GatewayHttp` and keeps what is its own gateway's: its paths and
JSON shapes, and, through two hooks, the answers the gateways word differently (WAHA's
wrong-state 422 naming the session's status; Evolution's 400/403 conflicts and its
"200 with `error: true`"). Everything a caller can observe (error classes, summaries, the
log line, the request headers) is the same as when each adapter carried its own copy.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from portal.web.request_input import BadInput, parse_json
from portal.whatsapp.link import (
    GatewayAuthError,
    GatewayError,
    GatewayUnavailable,
    InvalidWebhook,
    MalformedWebhook,
    SessionNotFound,
)

# The header that carries the portal's shared webhook secret: each gateway is told to send
# it with every delivery (WAHA's `customHeaders`, Evolution's webhook `headers`), since
# neither signs its webhooks in every edition.
TOKEN_HEADER = "X-Webhook-Token"  # noqa: S105 - a header name, not a secret

# A gateway's reading of an answer from 300 to 499 other than 401 and 404: the error to
# raise (a refusal the caller expects, so not logged), or None for the logged "HTTP <code>".
Refusal = Callable[[str, httpx.Response], GatewayError | None]
# A gateway's look at a decoded 2xx answer (`what`, status code, the JSON): raises or passes.
AnswerCheck = Callable[[str, int, Any], None]


def _no_check(what: str, code: int, answer: Any) -> None:
    return None


class GatewayHttp:
    """One gateway's pooled client: `call` returns decoded JSON or raises a GatewayError."""

    def __init__(
        self,
        base_url: str,
        auth_headers: Mapping[str, str],
        *,
        gateway: str,
        log: logging.Logger,
        unit: str,
        refusal: Refusal,
        answer_check: AnswerCheck = _no_check,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self._gateway = gateway  # the log line's `gateway`: "waha", "evolution"
        self._log = log  # the adapter's own logger, so records keep its name
        self._unit = unit  # what the gateway calls a session, for the 404 summary
        self._refusal = refusal
        self._answer_check = answer_check
        # Every request passes this timeout explicitly as well as holding it as the default.
        self._timeout = httpx.Timeout(timeout_s)
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={**auth_headers, "Accept": "application/json"},
            timeout=self._timeout,
            transport=transport,
            # A redirect would carry the API key to wherever it points.
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        """For an adapter's repr: the address only, never the key."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """One request; returns the decoded JSON (or None) or raises a GatewayError."""
        try:
            response = await self._client.request(method, path, timeout=self._timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise self._logged(GatewayUnavailable(f"{what}: timed out")) from exc
        except httpx.TransportError as exc:
            raise self._logged(GatewayUnavailable(f"{what}: {type(exc).__name__}")) from exc
        code = response.status_code
        if code >= 500:
            raise self._logged(GatewayUnavailable(f"{what}: HTTP {code}", status_code=code))
        if code == 401:
            raise self._logged(GatewayAuthError(f"{what}: API key rejected (HTTP 401)", status_code=401))
        if code == 404:
            raise SessionNotFound(f"{what}: no such {self._unit}", status_code=404)
        if code >= 300:
            # A gateway's own refusal (a conflict) is an expected answer: not logged.
            refused = self._refusal(what, response)
            if refused is not None:
                raise refused
            raise self._logged(GatewayError(f"{what}: HTTP {code}", status_code=code))
        try:
            answer = response.json() if response.content else None
        except ValueError:
            raise self._logged(GatewayError(f"{what}: response is not JSON", status_code=code)) from None
        self._answer_check(what, code, answer)
        return answer

    def _logged(self, error: GatewayError) -> GatewayError:
        """Log a failure worth an operator's look: its class and safe summary, nothing else."""
        self._log.warning(
            "whatsapp gateway call failed",
            extra={"gateway": self._gateway, "error_class": type(error).__name__, "summary": error.safe_summary},
        )
        return error


def segment(name: str, unit: str) -> str:
    """A session name as one URL path segment (names come from `session_name`, but be safe)."""
    if not name:
        raise ValueError(f"{unit} name must not be empty")
    return quote(name, safe="")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for Starlette's Headers and for a plain dict."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


class WebhookGate:
    """Who may deliver a gateway's webhooks: nobody while they are off (no URL); with a
    shared secret configured, whoever sends it; else a delivery a gateway-specific
    `verify` accepted (WAHA's signature), or anyone when unauthenticated deliveries are
    allowed (demo and tests only: production settings refuse that)."""

    def __init__(self, url: str | None, token: str | None, *, accept_unauthenticated: bool) -> None:
        self.url = url
        self.token = token or None  # what the gateway is told to send
        self._token = self.token.encode() if self.token else None
        self._accept_unauthenticated = accept_unauthenticated

    def admit(self, headers: Mapping[str, str], *, verify: Callable[[], None] | None = None) -> None:
        """Raise InvalidWebhook unless the delivery is authenticated; called before the body
        is read, so unauthenticated input is never parsed."""
        if self.url is None:
            raise InvalidWebhook("webhooks are off")
        if verify is not None:
            verify()
        if self._token is not None:
            given = (header(headers, TOKEN_HEADER) or "").encode()
            # Constant-time, so response timing does not leak how much of a guess was right.
            if not hmac.compare_digest(given, self._token):
                raise InvalidWebhook("webhook token missing or wrong")
        elif verify is None and not self._accept_unauthenticated:
            raise InvalidWebhook("unauthenticated webhook")


def json_object(body: bytes) -> Mapping[str, Any]:
    """An authenticated webhook body as a JSON object, or MalformedWebhook."""
    try:
        event = parse_json(body)
    except BadInput:
        raise MalformedWebhook("webhook body is not JSON") from None
    if not isinstance(event, Mapping):
        raise MalformedWebhook("webhook body is not a JSON object")
    return event

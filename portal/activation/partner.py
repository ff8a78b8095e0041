"""The YClients marketplace partner API client.

Owns every HTTP call the portal makes to YClients as a partner: finishing an install (whose
success is a 301 redirect, never followed, or a 200 `{"success": true}`: the docs list both),
reading and removing an installation, and turning
every way such a call can go wrong into one `PartnerError` whose text is safe to log and to
show: it never carries the salon's api_key or our partner token.

Only fields YClients documents are read: the 301's `Location` (accepted only on YClients'
own hosts), the 200's `success`, `meta.message` of an error, and `data.connection_status.status` of the install
status (`active`, `pending`, `freezed`); the install status carries no API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from portal.salons.ids import YclientsSalonId

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.yclients.v2+json"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MESSAGE_LIMIT = 200
EXCERPT_LIMIT = 120

# Russian covers "уже установил" / "уже установлено"; Altegio answers in English.
_ALREADY_INSTALLED = re.compile(r"уже\s+установ|already\s+installed", re.IGNORECASE)


class PartnerError(Exception):
    """A partner call that did not succeed.

    kind: "auth" | "invalid" | "already_installed" | "server" | "bad_response"
          | "unreachable" | "timeout"
    status: the HTTP status, None when no response arrived.
    message: YClients' own `meta.message` (at most 200 chars), None if it sent none.
    excerpt: at most 120 chars of the raw body, for logs.
    safe_summary: e.g. "partner 422 invalid" — fine for logs, metrics and the dashboard.
    """

    def __init__(
        self,
        kind: str,
        *,
        status: int | None = None,
        message: str | None = None,
        excerpt: str | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.message = message
        self.excerpt = excerpt
        self.safe_summary = f"partner {status} {kind}" if status is not None else f"partner {kind}"
        super().__init__(f"{self.safe_summary}: {message}" if message else self.safe_summary)


def _scrub(text: str, secrets: tuple[str, ...], limit: int) -> str:
    """One line of at most `limit` chars with every secret blanked out.

    Secrets are removed before cutting, so a key cannot survive half-cut at the boundary;
    newlines go too, so a hostile body cannot forge log lines.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:limit]


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:  # HTML error pages, empty bodies, bad UTF-8
        return None


def _success_true(payload: Any) -> bool:
    # Exactly `true`: a "true" string or a 1 is not what YClients documents.
    return isinstance(payload, dict) and payload.get("success") is True


def _meta_message(payload: Any) -> str | None:
    meta = payload.get("meta") if isinstance(payload, dict) else None
    message = meta.get("message") if isinstance(meta, dict) else None
    return message if isinstance(message, str) and message.strip() else None


def _kind_for_status(status: int, message: str | None) -> str:
    if 400 <= status < 500 and message and _ALREADY_INSTALLED.search(message):
        return "already_installed"
    if status in (401, 403):
        return "auth"
    if 400 <= status < 500:
        return "invalid"
    if status >= 500:
        return "server"
    return "bad_response"  # a 1xx/2xx/3xx the call did not expect


def _id(value: int) -> int:
    # Ids go into the URL path: only real integers, so nothing can smuggle in a "/../".
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer id, got {type(value).__name__}")
    return value


class PartnerClient:
    """Calls YClients' partner API at `base_url` (e.g. https://api.yclients.com/marketplace)."""

    def __init__(
        self,
        base_url: str,
        partner_token: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        redirect_hosts: tuple[str, ...] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Where YClients may send the owner's browser: its API host and the configured others.
        self.redirect_hosts = frozenset(
            h.strip().lower() for h in (urlsplit(self.base_url).hostname or "", *redirect_hosts) if h.strip())
        self._token = partner_token
        self._timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {partner_token}", "Accept": ACCEPT},
            # The install's success is a 301: following it would turn success into an HTML
            # page that looks like a failure.
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"PartnerClient({self.base_url!r})"  # never the token

    async def __aenter__(self) -> PartnerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def finish_install(
        self, *, yclients_salon_id: YclientsSalonId, application_id: int, api_key: str, webhook_urls: list[str]
    ) -> str | None:
        """Tell YClients the salon is connected; returns where YClients sends the owner's
        browser (its 301's Location), or None when it answered 200 `{"success": true}`
        and leaves the owner's next page to us."""
        body = {
            "salon_id": _id(yclients_salon_id),
            "application_id": _id(application_id),
            "api_key": api_key,
            "webhook_urls": list(webhook_urls),
        }
        secrets = (api_key,)
        response = await self._send("POST", "/partner/callback/redirect", body, secrets)
        if response.status_code == 200 and _success_true(_json(response)):
            return None
        if response.status_code not in REDIRECT_STATUSES:
            # Any other 2xx is not success: it is what a followed redirect or a proxy looks like.
            raise self._failure(response, secrets)
        location = response.headers.get("location", "").strip()
        # Resolved against the request URL, as a browser would resolve it.
        target = urljoin(str(response.request.url), location) if location else ""
        parts = urlsplit(target)
        # The owner's browser goes there next: only a real web address will do.
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self._failure(response, secrets, kind="bad_response")
        if (parts.hostname or "").lower() not in self.redirect_hosts:
            # An open redirect on our side if followed: the owner would land wherever it says.
            log.warning("partner redirect to a host that is not YClients': %s", parts.hostname)
            raise self._failure(response, secrets, kind="bad_response")
        return target

    async def get_installation(self, yclients_salon_id: YclientsSalonId, application_id: int) -> dict[str, Any] | None:
        """The install as YClients sees it (its envelope's `data`); None if not installed."""
        path = f"/salon/{_id(yclients_salon_id)}/application/{_id(application_id)}"
        response = await self._send("GET", path)
        payload = _json(response)
        # Only YClients' own JSON 404 means "not installed"; an HTML 404 means a wrong URL.
        if response.status_code == 404 and isinstance(payload, dict):
            return None
        if response.status_code != 200:
            raise self._failure(response)
        if not isinstance(payload, dict) or payload.get("success") is False:
            raise self._failure(response, kind="bad_response")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise self._failure(response, kind="bad_response")
        return data

    async def install_status(self, yclients_salon_id: YclientsSalonId, application_id: int) -> str | None:
        """`data.connection_status.status` of the install ("active", "pending", "freezed"),
        None when YClients reports no install; a PartnerError when the answer lacks it."""
        data = await self.get_installation(yclients_salon_id, application_id)
        if data is None:
            return None
        connection = data.get("connection_status")
        status = connection.get("status") if isinstance(connection, dict) else None
        if not isinstance(status, str) or not status:
            log.warning("install status without data.connection_status.status")
            raise PartnerError("bad_response", status=200)
        return status

    async def ping(self, application_id: int) -> None:
        """A cheap read-only call for reachability checks (one salon of our app's list)."""
        response = await self._send("GET", f"/application/{_id(application_id)}/salons?page=1&count=1")
        if response.status_code != 200:
            raise self._failure(response)

    async def uninstall(self, yclients_salon_id: YclientsSalonId, application_id: int) -> None:
        """Remove the app from the salon on YClients' side."""
        path = f"/salon/{_id(yclients_salon_id)}/application/{_id(application_id)}/uninstall"
        response = await self._send("POST", path)
        if not response.is_success:
            raise self._failure(response)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> httpx.Response:
        kind: str
        try:
            # httpx's timeout is per phase; this one bounds the whole call.
            async with asyncio.timeout(self._timeout_s):
                return await self._http.request(method, path, json=body)
        except (TimeoutError, httpx.TimeoutException):
            kind = "timeout"
        except (httpx.NetworkError, httpx.ProxyError):
            kind = "unreachable"
        except httpx.HTTPError:  # a malformed HTTP answer, an undecodable body
            kind = "bad_response"
        except httpx.InvalidURL:  # httpx parses even an unfollowed Location, and may choke
            kind = "bad_response"
        error = PartnerError(kind)
        log.warning("partner %s %s failed: %s", method, path, error.safe_summary)
        # `from None`: httpx's exception holds the request, and the request holds the api_key.
        raise error from None

    def _failure(
        self, response: httpx.Response, secrets: tuple[str, ...] = (), *, kind: str | None = None
    ) -> PartnerError:
        secrets = (*secrets, self._token)
        message = _meta_message(_json(response))
        error = PartnerError(
            kind or _kind_for_status(response.status_code, message),
            status=response.status_code,
            message=_scrub(message, secrets, MESSAGE_LIMIT) if message else None,
            excerpt=_scrub(response.text, secrets, EXCERPT_LIMIT),
        )
        log.warning(
            "partner %s %s failed: %s; body: %r",
            response.request.method,
            response.request.url.path,
            error.safe_summary,
            error.excerpt,
        )
        return error

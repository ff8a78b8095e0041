"""Rendering shared by every handler: templates with the translator, and errors as values.

An error reaches a salon owner as a sentence and a next step (an HTML page), and an API
client as JSON with a stable `code`; both with the real status code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.templating import Jinja2Templates

from portal.platform.resources import resource_path
from portal.web.deps import web_deps, web_deps_if_any
from portal.web.htmx import is_htmx, target_id
from portal.web.i18n import DEFAULT_LANGUAGE, labeler, pick_language, translations, translator

# A whole page that a fragment's handler answers for a browser without JavaScript (with the
# fragment's context and status). Pages that compose fragments hand it to their handlers.
WholePage = Callable[[Request, dict[str, Any], int], Awaitable[Response]]

TEMPLATES_DIR = resource_path("templates")


STAFF_PATHS = "/admin"
# The dashboard was English only and its JSON twin (the admin API) still is: a client that
# names no language we speak (a script, curl) keeps English there; a browser asking for
# Russian gets Russian. Owner pages default to Russian.
STAFF_DEFAULT_LANGUAGE = "en"
FALLBACK_TIMEZONE = "Europe/Moscow"


def request_language(request: Request) -> str:
    staff_page = request.url.path.startswith(STAFF_PATHS)
    return pick_language(request, STAFF_DEFAULT_LANGUAGE if staff_page else DEFAULT_LANGUAGE)


def timezone_of(request: Request) -> ZoneInfo:
    """The zone times are shown in: DEFAULT_TIMEZONE (YClients names no zone per salon)."""
    deps = web_deps_if_any(request)
    return ZoneInfo(deps.settings.default_timezone if deps else FALLBACK_TIMEZONE)


def format_local(moment: datetime, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S",
                 language: str = DEFAULT_LANGUAGE) -> str:
    """`moment` on the zone's clock with the zone's short name in `language` ("18:45 МСК",
    "18:45 MSK": the catalogue's `time.zone.<abbreviation>`, else the abbreviation). A naive
    value is taken as UTC (the database hands out timestamptz; naive ones are ours, in UTC)."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(zone)
    abbreviation = local.tzname() or ""
    return f"{local.strftime(fmt)} {labeler(language)('zone', abbreviation, abbreviation, prefix='time')}"


@pass_context
def _local_time(context: Any, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Jinja filter `|local_time`: a timestamp in DEFAULT_TIMEZONE with the zone's name."""
    if moment is None:
        return ""
    return format_local(moment, context.get("timezone") or ZoneInfo(FALLBACK_TIMEZONE), fmt,
                        context.get("lang") or DEFAULT_LANGUAGE)


# The inner pair of quotes by language: a quoted name inside the page's own quotes.
_INNER_QUOTES = {"ru": ("„", "“"), "en": ("‘", "’")}


@pass_context
def _inner_quotes(context: Any, text: str) -> str:
    """Jinja filter: a name to put inside the page's quotes, its own quotes turned into the
    language's inner pair, so «Барбершоп «Борода»» reads «Барбершоп „Борода“»."""
    opening, closing = _INNER_QUOTES.get(context.get("lang") or DEFAULT_LANGUAGE, ("‘", "’"))
    text = text.translate(str.maketrans("«“»”", opening * 2 + closing * 2))
    parts = text.split('"')  # straight quotes: alternately opening and closing
    quotes = [opening if i % 2 == 0 else closing for i in range(len(parts) - 1)] + [""]
    return "".join(part + quote for part, quote in zip(parts, quotes, strict=True))


def _context(request: Request) -> dict[str, Any]:
    lang = request_language(request)
    deps = web_deps_if_any(request)
    t, gettext = translator(lang), translations(lang)
    # gettext/ngettext in the context win over the environment's: `{% trans %}` speaks the
    # request's language. `_` is `t`, so `_("key", name=...)` fills values as t() does.
    return {"lang": lang, "t": t, "_": t, "gettext": gettext.gettext, "ngettext": gettext.ngettext,
            "label": labeler(lang),
            "sandbox": bool(deps and deps.settings.sandbox), "timezone": timezone_of(request)}


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_context])
    templates.env.add_extension("jinja2.ext.i18n")
    # The fallback for a template rendered without a request (none today): the default language.
    templates.env.install_gettext_translations(translations(DEFAULT_LANGUAGE), newstyle=False)  # type: ignore[attr-defined]
    templates.env.filters["local_time"] = _local_time
    templates.env.filters["inner_quotes"] = _inner_quotes
    return templates


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    templates = web_deps(request).templates
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code, headers=headers)


def error_response(request: Request, status_code: int, code: str, message_key: str,
                   next_step_key: str | None = "error.next_step_marketplace",
                   headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    t = translator(request_language(request))
    if wants_json(request):
        body = {"success": False, "error": t(message_key), "code": code, **(extra or {})}
        return JSONResponse(body, status_code=status_code, headers=headers)
    context = {
        "code": code, "message": t(message_key),
        "next_step": t(next_step_key) if next_step_key else None,
        "request_id": request.scope.get("state", {}).get("request_id"),
    }
    if is_htmx(request):
        # htmx swaps this into one element of the page (e.g. the polled WhatsApp widget): a
        # whole page with its top bar would nest a page in a page. The fragment keeps the
        # target's id so the page stays whole, and offers a reload as the next step.
        context["target_id"] = target_id(request)
        return render(request, "partials/error.html", context, status_code=status_code, headers=headers)
    return render(request, "error.html", context, status_code=status_code, headers=headers)

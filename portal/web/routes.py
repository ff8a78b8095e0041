"""POST /language: the visible language switch; remembers the choice in a cookie."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from portal.web.deps import web_deps
from portal.web.i18n import LANG_COOKIE, LANGUAGES


def _safe_next(value: object) -> str:
    # Only a local path: never an open redirect to another site.
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:512]
    return "/onboarding"


async def switch_language(request: Request) -> RedirectResponse:
    form = await request.form()
    lang = form.get("lang")
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    if isinstance(lang, str) and lang in LANGUAGES:
        settings = web_deps(request).settings
        embedded = settings.embed_in_yclients  # the choice must hold inside YClients' app card too
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="none" if embedded else "lax",
                            secure=settings.secure_cookies or embedded)
        if embedded:  # Python's http.cookies knows Partitioned only from 3.14
            name, value = response.raw_headers[-1]
            response.raw_headers[-1] = (name, value + b"; Partitioned")
    return response


def routes() -> list[BaseRoute]:
    return [Route("/language", switch_language, methods=["POST"])]

"""The answer while PostgreSQL is away (a restart, a failover): never a 500.

Everything an owner or staff member sees lives in the database, so while it is away there is
nothing true to show, only that we are waiting for it: 503 with Retry-After, and
- the owner's polled WhatsApp widget gets a fragment that keeps polling by itself, so the
  widget comes back without a click once the database does;
- any other htmx target gets a short notice in place;
- a page (owner or staff) gets a clear page that reloads itself;
- a JSON caller gets the usual envelope with `retry_after`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portal.web.htmx import is_htmx, target_id
from portal.web.i18n import translator
from portal.web.rendering import render, request_language, wants_json

RETRY_AFTER_S = 5
_WIDGET = "link-status"
_PAGES = ("onboarding", "salon")


def unavailable(request: Request) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    if wants_json(request):
        t = translator(request_language(request))
        return JSONResponse({"success": False, "code": "TEMPORARILY_UNAVAILABLE", "error": t("error.unavailable"),
                             "retry_after": RETRY_AFTER_S}, status_code=503, headers=headers)
    context: dict[str, object] = {"retry_s": RETRY_AFTER_S}
    if is_htmx(request):
        target = target_id(request)
        page = request.query_params.get("page")
        context |= {"target_id": target, "widget": target == _WIDGET,
                    "page": page if page in _PAGES else None}
        return render(request, "partials/unavailable.html", context, status_code=503, headers=headers)
    context["reload"] = request.method in ("GET", "HEAD")
    return render(request, "unavailable.html", context, status_code=503, headers=headers)

"""The floor for bench/poll_bench.py: Starlette with one route and nothing else.

No middleware, no database, no templates: what the same uvicorn settings can serve on this
machine at all. The fragment is shaped like the portal's link widget (without the QR's SVG)
and about 1.5 KB, so the two sides move comparable bytes.

Run it as the benchmark does: `uvicorn bare_app:app --app-dir bench --no-access-log`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

_STEPS = "".join(f"<li>Step {n}: open WhatsApp, Settings, Linked devices, Link a device.</li>" for n in range(1, 18))
FRAGMENT = (
    '<div id="link-status" class="link-status state-awaiting" data-state="awaiting_scan"'
    ' hx-get="/onboarding/whatsapp/status?v=0123456789ab" hx-trigger="every 2.0s" hx-swap="outerHTML">'
    f"<h3>Scan the code with WhatsApp</h3><ol class=\"numbered\">{_STEPS}</ol>"
    '<p class="muted small">The code refreshes by itself.</p></div>'
)


async def status(request: Request) -> Response:
    return HTMLResponse(FRAGMENT, headers={"Cache-Control": "no-store", "Vary": "HX-Request"})


app = Starlette(routes=[Route("/onboarding/whatsapp/status", status)])

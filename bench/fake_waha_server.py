"""The tests' fake WAHA as a process of its own, for benchmarks, with a control API.

    python bench/fake_waha_server.py PORT API_KEY

Serves tests/helpers/gateways/fake_waha.py (documented fields only; sessions start in SCAN_QR_CODE)
plus, under /_control (no API key; bound to 127.0.0.1):
    POST /_control/scan/{name}?phone=7916...&deliver_to=http://host:port   the phone scans:
         the session is WORKING with that number, and its session.status webhook is
         delivered (signed, as configured at creation) to `deliver_to` instead of the
         configured URL (a load balancer's choice of instance); answers the delivery's status
    GET  /_control/calls   gateway calls per session so far (session creation left out; the
         list of every session, `GET /api/sessions`, as "(list)")
    GET  /_control/kinds   the same calls by kind: list, qr, session (a session's read), other
    POST /_control/reset   forget the recorded calls
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.gateways.fake_waha import create_fake_waha


def build(api_key: str):
    app, state = create_fake_waha(api_key)
    state.status_on_start = "SCAN_QR_CODE"

    async def scan(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        state.set_status(name, "WORKING")
        state.set_me(name, request.query_params.get("phone", "79160000000"))
        target = urlsplit(request.query_params["deliver_to"])
        answers = []
        async with httpx.AsyncClient(timeout=10) as client:
            for url, body, headers in state.webhook_delivery(name):
                path = urlsplit(url).path
                r = await client.post(f"{target.scheme}://{target.netloc}{path}", content=body, headers=headers)
                answers.append(r.status_code)
        return JSONResponse({"delivered": answers})

    async def calls(request: Request) -> JSONResponse:
        counted: Counter[str] = Counter()
        for method, path, _ in state.requests:
            if path.startswith("/_control") or (method == "POST" and path == "/api/sessions"):
                continue
            if path == "/api/sessions":  # the safety sweep's list: one call for every session
                counted["(list)"] += 1
            else:
                counted[path.split("/")[3] if path.startswith("/api/sessions/") else path.split("/")[2]] += 1
        return JSONResponse(counted)

    async def kinds(request: Request) -> JSONResponse:
        counted: Counter[str] = Counter()
        for method, path, _ in state.requests:
            if path.startswith("/_control") or (method == "POST" and path == "/api/sessions"):
                continue
            counted["list" if path == "/api/sessions" else "qr" if path.endswith("/auth/qr")
                    else "session" if method == "GET" and path.startswith("/api/sessions/") else "other"] += 1
        return JSONResponse(counted)

    async def reset(request: Request) -> JSONResponse:
        state.requests.clear()
        return JSONResponse({"ok": True})

    # Ahead of the fake's own routes, and past its API-key check (that check is middleware
    # on the fake's app; these routes sit on an outer app).
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[
        Route("/_control/scan/{name}", scan, methods=["POST"]),
        Route("/_control/calls", calls),
        Route("/_control/kinds", kinds),
        Route("/_control/reset", reset, methods=["POST"]),
        Mount("/", app=app),
    ])
    return outer


if __name__ == "__main__":
    port, key = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(build(key), host="127.0.0.1", port=port, log_level="warning", access_log=False)

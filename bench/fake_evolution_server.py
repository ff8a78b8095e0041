"""The tests' fake Evolution API as a process of its own, for benchmarks, with a control API.

    python bench/fake_evolution_server.py PORT API_KEY

Serves tests/helpers/gateways/fake_evolution.py (built from Evolution's source; instances
show a QR as soon as they are created) plus, under /_control (no API key; bound to 127.0.0.1),
the same control API as bench/fake_waha_server.py:
    POST /_control/scan/{name}?phone=7916...&deliver_to=http://host:port   the phone scans:
         the instance is open with that number, and the events that raised are delivered
         (with the instance's webhook headers) to `deliver_to`; answers their statuses
    GET  /_control/calls   gateway calls per instance so far (instance creation left out)
    POST /_control/reset   forget the recorded calls
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.gateways.fake_evolution import create_fake_evolution


def build(api_key: str) -> Starlette:
    app, state = create_fake_evolution(api_key)
    seen: Counter[str] = Counter()

    async def scan(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        state.outbox = [(n, e) for n, e in state.outbox if n != name]  # earlier QR events: not this scan's
        state.scan(name, request.query_params.get("phone", "79160000000"))
        target = urlsplit(request.query_params["deliver_to"])
        answers = []
        async with httpx.AsyncClient(timeout=10) as client:
            for url, body, headers in state.deliveries():
                if json.loads(body)["instance"] != name:
                    continue
                path = urlsplit(url).path
                r = await client.post(f"{target.scheme}://{target.netloc}{path}", content=body, headers=headers)
                answers.append(r.status_code)
        return JSONResponse({"delivered": answers})

    async def calls(request: Request) -> JSONResponse:
        return JSONResponse(seen)

    async def reset(request: Request) -> JSONResponse:
        seen.clear()
        return JSONResponse({"ok": True})

    async def counting(scope, receive, send):  # every gateway call, by the instance it is about
        if scope["type"] == "http" and not scope["path"].startswith("/_control"):
            path, query = scope["path"], scope.get("query_string", b"").decode()
            if path != "/instance/create":
                named = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("instanceName")
                # fetchInstances without a name: the safety sweep's list of every instance
                seen[named or ("(list)" if path == "/instance/fetchInstances" else path.rsplit("/", 1)[-1])] += 1
        await app(scope, receive, send)

    return Starlette(routes=[
        Route("/_control/scan/{name}", scan, methods=["POST"]),
        Route("/_control/calls", calls),
        Route("/_control/reset", reset, methods=["POST"]),
        Mount("/", app=counting),
    ])


if __name__ == "__main__":
    port, key = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(build(key), host="127.0.0.1", port=port, log_level="warning", access_log=False)

"""A stand-in for YClients' `POST /partner/callback/redirect`, for bench/activation_bench.py.

It checks the partner token and the body's `salon_id`, waits `delay` seconds (0: answers at
once), then answers as YClients does on success: 301 with a Location and no body. The delay
can be changed while it runs, so one portal can be measured against an instant partner and
then against a slow one:

    PUT /_bench/delay?s=10      (answers 204)

Run it on its own port, in its own process, so it does not share a core's GIL with anyone:

    .venv/bin/python bench/partner_stub.py --port 9100 --token SECRET [--app-id 1] [--delay 0]

It also answers `GET /salon/{salon_id}/application/{application_id}` (the install state the
landing reads) with `connection_status.status` "pending" for every salon: the owner has
pressed Install. It keeps no state about installs (the sandbox's partner API does; this one
only answers).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_stub(token: str, app_id: int = 1, delay_s: float = 0.0) -> Starlette:
    state = {"delay": delay_s, "calls": 0}
    expected = f"Bearer {token}".encode()

    async def callback_redirect(request: Request) -> Response:
        state["calls"] += 1
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return JSONResponse({"success": False, "data": None, "meta": {"message": "bad partner token"}}, 401)
        try:
            body = json.loads(await request.body())
            salon_id = int(body["salon_id"])
            assert body["application_id"] == app_id and body["api_key"]
        except (ValueError, KeyError, TypeError, AssertionError):
            return JSONResponse({"success": False, "data": None, "meta": {"message": "bad body"}}, 422)
        if state["delay"]:
            await asyncio.sleep(state["delay"])
        return Response(status_code=301, headers={"Location": f"https://yclients.example/salon/{salon_id}/done"})

    async def installation(request: Request) -> Response:
        # YClients' documented envelope and `data.connection_status` (docs: DESIGN.md, "Other
        # partner endpoints"); always pending: every owner the bench lands has pressed Install.
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return JSONResponse({"success": False, "data": None, "meta": {"message": "bad partner token"}}, 401)
        status = {"status": "pending", "created_at": "2026-01-01T00:00:00+03:00"}
        return JSONResponse({"success": True, "data": {"connection_status": status, "logs": [], "payments": []},
                             "meta": []})

    async def set_delay(request: Request) -> Response:
        state["delay"] = float(request.query_params.get("s", "0"))
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse(state)

    return Starlette(routes=[
        Route("/partner/callback/redirect", callback_redirect, methods=["POST"]),
        Route("/salon/{salon_id:int}/application/{application_id:int}", installation),
        Route("/_bench/delay", set_delay, methods=["PUT"]),
        Route("/_bench/stats", stats),
    ])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True, help="the partner token the portal will present")
    parser.add_argument("--app-id", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering (default 0)")
    args = parser.parse_args()
    uvicorn.run(create_stub(args.token, args.app_id, args.delay), host=args.host, port=args.port,
                access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

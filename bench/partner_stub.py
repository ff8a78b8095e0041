"""A stand-in for YClients' `POST /partner/callback/redirect`, for bench/activation_bench.py.

It checks the partner token and the body's `salon_id`, waits `delay` seconds (0: answers at
once), then answers as YClients does on success: 301 with a Location and no body. The delay
can be changed while it runs, so one portal can be measured against an instant partner and
then against a slow one:

    PUT /_bench/delay?s=10      (answers 204)

Run it on its own port, in its own process, so it does not share a core's GIL with anyone:

    .venv/bin/python bench/partner_stub.py --port 9100 --token SECRET [--app-id 1] [--delay 0]

Activation reads the install status first (`GET /salon/{id}/application/{app}`): the stub
answers `pending` for a salon it was never called back for and `active` after, with the
documented fields only. It keeps no more state than that set of ids (the sandbox's partner
API models the whole lifecycle; this one only answers).
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
    state = {"delay": delay_s, "calls": 0, "status_reads": 0}
    activated: set[int] = set()
    expected = f"Bearer {token}".encode()

    async def install_status(request: Request) -> Response:
        state["status_reads"] += 1
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            return JSONResponse({"success": False, "data": None, "meta": {"message": "bad partner token"}}, 401)
        status = "active" if request.path_params["salon_id"] in activated else "pending"
        data = {"connection_status": {"status": status, "created_at": "2026-12-04 10:00:00"},
                "payments": [], "logs": []}
        return JSONResponse({"success": True, "data": data, "meta": []})

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
        activated.add(salon_id)
        return Response(status_code=301, headers={"Location": f"https://yclients.example/salon/{salon_id}/done"})

    async def set_delay(request: Request) -> Response:
        state["delay"] = float(request.query_params.get("s", "0"))
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse(state)

    return Starlette(routes=[
        Route("/partner/callback/redirect", callback_redirect, methods=["POST"]),
        Route("/salon/{salon_id:int}/application/{app:int}", install_status),
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

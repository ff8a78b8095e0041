"""How lightly the portal touches the WhatsApp gateway, and how fast a scan reaches the
owner's screen, with two portal instances on one PostgreSQL and a fake WAHA or a fake
Evolution API.

    .venv/bin/python bench/gateway_bench.py                 # every scenario, both gateways (~7 minutes)
    .venv/bin/python bench/gateway_bench.py --gateway evolution --only calls --duration 30

Scenarios, each next to its target (issue 10), in one run:
- calls: gateway calls per waiting salon per second, webhooks on and off, at 1, 2 and 50
  tabs per salon, the tabs spread over both instances (target <= 0.2 on, <= 1 off);
- scan: from the gateway's WORKING webhook (delivered to instance B) to the owner's page
  (polling instance A every 2 s) showing "connected": p95 (target <= 2.5 s).
Evolution has no "webhooks off" mode (production requires its webhook token), so its calls
rows are with webhooks on only. The two instances and the fake gateway are subprocesses;
the load generator is this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.machine import free_port, run_async, stop_process  # noqa: E402
from tests.helpers.database import embedded_server, with_database  # noqa: E402
from tests.helpers.landing import landing_query  # noqa: E402

HTMX = {"HX-Request": "true"}
VERSION = re.compile(r'hx-get="/onboarding/whatsapp/status\?v=([0-9a-f]+)[&"]')
STATE = re.compile(r'data-state="([a-z_]+)"')
WAHA_KEY = "bench-waha-key"
HOOK_KEY = "bench-hook-key"
EVOLUTION_TOKEN = "bench-evolution-webhook-token-0123"
FAKES = {"waha": "bench/fake_waha_server.py", "evolution": "bench/fake_evolution_server.py"}


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode} during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


@contextlib.contextmanager
def deployment(admin_dsn: str, *, webhooks: bool, gateway: str = "waha") -> Iterator[tuple[str, str, str, str]]:
    """A fresh database, the fake gateway and two portal instances: (A, B, gateway, partner token)."""
    name = f"bench_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_async(create())
    dsn = with_database(admin_dsn, name)
    token, procs = secrets.token_urlsafe(32), []
    waha_port, ports = free_port(), (free_port(), free_port())
    waha = f"http://127.0.0.1:{waha_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "YCLIENTS_", "WAHA_"))}
    env |= {"PYTHONPATH": str(ROOT), "DATABASE_URL": dsn, "SANDBOX": "true", "YCLIENTS_PARTNER_TOKEN": token,
            "JWT_SECRET": "j" * 40, "SESSION_SECRET": "s" * 40, "API_KEY_SECRET": "k" * 40,
            "LOG_LEVEL": "WARNING", "WHATSAPP_GATEWAY": "waha", "WAHA_URL": waha, "WAHA_API_KEY": WAHA_KEY,
            "WAHA_WEBHOOK_HMAC_KEY": HOOK_KEY, "WAHA_WEBHOOKS": "on" if webhooks else "off",
            "OWNER_RATE_LIMIT": "100000/minute", "LANDING_RATE_LIMIT": "100000/minute",
            "WEBHOOK_RATE_LIMIT": "100000/minute"}
    if gateway == "evolution":
        env |= {"WHATSAPP_GATEWAY": "evolution", "EVOLUTION_URL": waha, "EVOLUTION_API_KEY": WAHA_KEY,
                "EVOLUTION_WEBHOOK_TOKEN": EVOLUTION_TOKEN}
    try:
        procs.append(subprocess.Popen([sys.executable, str(ROOT / FAKES[gateway]), str(waha_port),
                                       WAHA_KEY], env=env, start_new_session=True))
        wait_ready(f"{waha}/_control/calls", procs[-1])
        for port in ports:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "portal", "serve", "--port", str(port)], cwd=ROOT, start_new_session=True,
                env=env | {"PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PORTAL_DATA_DIR": f"/tmp/{name}-{port}"},
                stdout=subprocess.DEVNULL))
            wait_ready(f"http://127.0.0.1:{port}/livez", procs[-1])
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", waha, token
    finally:
        for proc in procs:
            stop_process(proc, 10)


async def land(base: str, token: str, salon_id: int) -> tuple[str, str]:
    """An owner arrives and asks for a QR: (session cookie, poll version)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await client.get(f"/sandbox/install/{salon_id}", follow_redirects=False)  # pending, as landings need
        r = await client.get(f"/auth/yclients/redirect?{landing_query(token, salon_id)}", follow_redirects=False)
        cookie = client.cookies.get("portal_session")
        if r.status_code != 303 or cookie is None:
            raise RuntimeError(f"landing {salon_id}: {r.status_code} {r.text[:200]}")
        r = await client.post("/onboarding/whatsapp/start", headers=HTMX)
        match = VERSION.search(r.text)
        if match is None:
            raise RuntimeError(f"start {salon_id}: {r.status_code} {r.text[:300]}")
        return cookie, match.group(1)


async def tab(base: str, cookie: str, version: str, until: float, seen: dict[str, float] | None = None,
              key: str = "") -> int:
    """One browser tab polling every 2 s (htmx's rhythm), following the version; polls made."""
    polls = 0
    await asyncio.sleep(random.uniform(0, 2))
    async with httpx.AsyncClient(base_url=base, cookies={"portal_session": cookie}, timeout=10) as client:
        while time.monotonic() < until:
            r = await client.get("/onboarding/whatsapp/status", params={"v": version}, headers=HTMX)
            polls += 1
            if r.status_code == 200:
                if found := VERSION.search(r.text):
                    version = found.group(1)  # the fragment changed: poll for the next change
                state = STATE.search(r.text)
                if seen is not None and state and state.group(1) == "connected" and key not in seen:
                    seen[key] = time.monotonic()
                    return polls
            await asyncio.sleep(2)
    return polls


async def calls_scenario(a: str, b: str, waha: str, token: str, *, tabs: int, salons: int,
                         duration: float, first_id: int) -> float:
    owners = [await land(a, token, first_id + i) for i in range(salons)]
    async with httpx.AsyncClient(timeout=10) as control:
        await control.post(f"{waha}/_control/reset")
        until = time.monotonic() + duration
        await asyncio.gather(*(tab((a, b)[t % 2], cookie, version, until)
                               for cookie, version in owners for t in range(tabs)))
        calls = (await control.get(f"{waha}/_control/calls")).json()
    # A list sweep (every session in one call) counts as one call.
    total = sum(n for name, n in calls.items() if name.startswith("salon-") or name == "(list)")
    return total / salons / duration


async def scan_scenario(a: str, b: str, waha: str, token: str, *, salons: int, first_id: int) -> list[float]:
    owners = [await land(a, token, first_id + i) for i in range(salons)]
    seen: dict[str, float] = {}
    delivered: dict[str, float] = {}
    took: dict[str, float] = {}
    until = time.monotonic() + 60

    async def scan(i: int) -> None:
        await asyncio.sleep(2 + random.uniform(0, 8))
        name = f"salon-{first_id + i}"
        async with httpx.AsyncClient(timeout=10) as control:
            delivered[name] = time.monotonic()
            r = await control.post(f"{waha}/_control/scan/{name}", params={"deliver_to": b,
                                                                           "phone": f"7916{first_id + i:07d}"})
            if r.json()["delivered"] != [200]:
                raise RuntimeError(f"webhook for {name} answered {r.json()}")
            took[name] = time.monotonic() - delivered[name]

    await asyncio.gather(*(tab(a, cookie, version, until, seen, f"salon-{first_id + i}")
                           for i, (cookie, version) in enumerate(owners)),
                         *(scan(i) for i in range(salons)))
    print("webhook round trips:", sorted(round(v, 2) for v in took.values()))
    return sorted(seen[k] - delivered[k] for k in seen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("calls", "scan"), default=None)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of polling per calls run")
    parser.add_argument("--salons", type=int, default=10)
    parser.add_argument("--gateway", choices=("waha", "evolution"), action="append",
                        help="the gateway(s) to measure (default: both)")
    args = parser.parse_args()
    random.seed(1)
    with embedded_server() as admin_dsn:
        for gateway in args.gateway or ["waha", "evolution"]:
            measure(admin_dsn, gateway, args)
    return 0


def measure(admin_dsn: str, gateway: str, args: argparse.Namespace) -> None:
    print(f"\n{os.cpu_count()} cores; two portal instances and a fake {gateway} on 127.0.0.1, one PostgreSQL")
    if args.only in (None, "calls"):
        print(f"\ngateway calls per waiting salon per second ({args.salons} salons, {args.duration:g} s, "
              "tabs alternate between the instances)")
        print(f"{'webhooks':<10}{'tabs/salon':>11}{'salons':>8}{'calls/salon/s':>15}{'target':>9}{'':>8}")
        for webhooks in (True, False) if gateway == "waha" else (True,):
            with deployment(admin_dsn, webhooks=webhooks, gateway=gateway) as (a, b, waha, token):
                for n, tabs in enumerate((1, 2, 50)):
                    # At most ~100 browser tabs in all: the load generator (one process, an
                    # httpx client per tab) must not be what is measured.
                    salons = max(2, min(args.salons, 100 // tabs))
                    rate = run_async(calls_scenario(a, b, waha, token, tabs=tabs, salons=salons,
                                                    duration=args.duration, first_id=100_000 + 1000 * n))
                    target = 0.2 if webhooks else 1.0
                    print(f"{'on' if webhooks else 'off':<10}{tabs:>11}{salons:>8}{rate:>15.3f}{target:>9.1f}"
                          f"{'met' if rate <= target else 'MISSED':>8}")
    if args.only in (None, "scan"):
        with deployment(admin_dsn, webhooks=True, gateway=gateway) as (a, b, waha, token):
            delays = run_async(scan_scenario(a, b, waha, token, salons=40, first_id=300_000))
        p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else float("nan")
        print(f"\nscan to screen: {len(delays)} salons, webhook to instance B, owner polls A every 2 s")
        print(f"p50 {delays[len(delays) // 2]:.2f} s, p95 {p95:.2f} s, max {delays[-1]:.2f} s; "
              f"target p95 <= 2.5 s: {'met' if p95 <= 2.5 else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())

"""The QR poll against a bare Starlette endpoint, side by side, in one run.

    .venv/bin/python bench/poll_bench.py        # 200 owners polling every 2 s (make bench)
    .venv/bin/python bench/poll_bench.py --pollers 50 --duration 10 --interval 0 --client raw
    .venv/bin/python bench/poll_bench.py --mode portal --gateway waha --pollers 1000 --duration 60   # issue 20

With `--gateway waha` (the adapter, webhooks on, against bench/fake_waha_server.py) it also
reports the gateway calls made while the owners poll, by kind, per waiting salon per second,
and each worker's resident memory at the end of the polls.

Both servers run as subprocesses under the same uvicorn settings (one process, uvloop and
httptools when installed, no access log), one after the other, against the same pollers.
Only the poll requests are timed; landing and the first QR are set-up. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.machine import cpu_seconds, free_port, machine_busy, run_async, stop_process, worker_rss_mb  # noqa: E402
from tests.helpers.database import embedded_server  # noqa: E402
from tests.helpers.landing import landing_query  # noqa: E402

HTMX = {"HX-Request": "true"}
VERSION = re.compile(r'hx-get="/onboarding/whatsapp/status\?v=([0-9a-f]+)[&"]')
STATUS_PATH = "/onboarding/whatsapp/status"
FIRST_SALON_ID = 600_000








class Server:
    """A server subprocess in its own session, so a Ctrl-C meant for us reaches it once,
    from us, as the graceful SIGINT that lets the portal stop its embedded PostgreSQL."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict, cwd: Path, pg_dir: Path | None = None):
        self.name, self.port, self.pg_dir = name, port, pg_dir
        self.base_url = f"http://127.0.0.1:{port}"
        # stdout is the demo banner; stderr (warnings, tracebacks) stays on the terminal.
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env | {"PYTHONPATH": str(ROOT)},
                                     start_new_session=True, stdout=subprocess.DEVNULL)

    def wait_ready(self, path: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s  # the first start runs initdb: give it time
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up")
            try:
                if httpx.get(self.base_url + path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not answer {path} within {timeout_s:.0f} s")

    def postmaster(self) -> int | None:
        try:
            return int((self.pg_dir / "postmaster.pid").read_text().split()[0]) if self.pg_dir else None
        except (OSError, ValueError, IndexError):
            return None

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid] + [p for p in [self.postmaster()] if p])

    def stop(self) -> None:
        stop_process(self.proc, 30)
        pid = self.postmaster()  # still there only if the portal died without stopping it
        if pid:
            with contextlib.suppress(OSError):  # gone: done
                os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
                for _ in range(50):
                    os.kill(pid, 0)
                    time.sleep(0.1)


@dataclass
class Result:
    name: str
    duration: float
    latencies: list[float] = field(default_factory=list)  # seconds, polls only
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # non-2xx statuses and exceptions
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # anything else busy on the machine meanwhile: noise in the numbers
    gateway_calls: Counter = field(default_factory=Counter)  # by kind, during the polls (WAHA only)
    rss_mb: list[float] = field(default_factory=list)  # each worker's, at the end of the polls

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.duration


async def land_and_start(client: httpx.AsyncClient, token: str, salon_id: int) -> str:
    """Be a salon owner arriving from the marketplace and asking for a QR; the poll version."""
    # Install pressed in the sandbox's YClients first (the landing admits pending installs);
    # the same keep-alive connection, so the same worker, as its sandbox is in memory.
    await client.get(f"/sandbox/install/{salon_id}", follow_redirects=False)
    r = await client.get(f"/auth/yclients/redirect?{landing_query(token, salon_id)}", follow_redirects=False)
    if r.status_code != 303 or "portal_session" not in client.cookies:
        raise RuntimeError(f"landing for salon {salon_id}: {r.status_code} {r.text[:200]}")
    r = await client.post("/onboarding/whatsapp/start", headers=HTMX)
    match = VERSION.search(r.text)
    if r.status_code != 200 or match is None:
        raise RuntimeError(f"start for salon {salon_id}: {r.status_code}, no poll in {r.text[:200]!r}")
    return match.group(1)


class HttpxPoll:
    """One owner's browser: an httpx client of its own, holding its own session cookie."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def get(self, version: str) -> tuple[int, str]:
        r = await self.client.get(STATUS_PATH, params={"v": version}, headers=HTMX)
        return r.status_code, r.text

    async def aclose(self) -> None:
        await self.client.aclose()


class RawPoll:
    """The same GET, written by hand on one keep-alive socket. httpx spends about a
    millisecond of CPU per request, so in a closed loop it saturates its core near
    1,000 req/s and measures itself; this costs a few tens of microseconds."""

    def __init__(self, base_url: str, cookie: str | None):
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port, self.streams = int(port), None
        extra = f"Cookie: portal_session={cookie}\r\n" if cookie else ""
        self.head = f"Host: {self.host}:{port}\r\nHX-Request: true\r\n{extra}\r\n"

    async def get(self, version: str) -> tuple[int, str]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        try:
            writer.write(f"GET {STATUS_PATH}?v={version} HTTP/1.1\r\n{self.head}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0  # a 204 has no Content-Length; nothing here is chunked
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            return int(head[9:12]), (await reader.readexactly(length)).decode() if length else ""
        except BaseException:
            writer.close()
            self.streams = None  # reconnect next time, as a browser would
            raise

    async def aclose(self) -> None:
        if self.streams:
            self.streams[1].close()


async def poller(conn, version: str, interval: float, start: float, end: float, res: Result) -> None:
    loop = asyncio.get_running_loop()
    # Owners arrive at random moments; a fixed cadence from there, as htmx's `every 2s`
    # re-arms its timer without waiting for the answer. A tick missed while a request was
    # still out is dropped, as htmx drops a trigger while its request is in flight.
    tick = start + (random.uniform(0, interval) if interval else 0)
    while True:
        if tick > loop.time():
            await asyncio.sleep(tick - loop.time())
        if loop.time() >= end:
            return
        sent = time.perf_counter()
        try:
            status, text = await conn.get(version)
        except (httpx.HTTPError, OSError, EOFError, ValueError) as exc:
            res.errors[type(exc).__name__] += 1
        else:
            res.latencies.append(time.perf_counter() - sent)
            res.statuses[status] += 1
            if status >= 300:
                res.errors[f"HTTP {status}"] += 1
            elif status == 200 and (match := VERSION.search(text)):
                version = match.group(1)  # the fragment changed: poll for the next change
        tick = max(tick + interval, loop.time())


async def run_side(servers: list[Server], args, token: str | None, gateway_url: str | None = None) -> Result:
    # One client per poller, as each owner has a browser (and a cookie) of their own; one
    # TLS context shared, since building 200 of them is slow and none is ever used. With
    # several instances the owners are spread over them, each staying with its own.
    tls = ssl.create_default_context()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=servers[i % len(servers)].base_url, limits=limits, timeout=10, verify=tls)
               for i in range(args.pollers)]
    conns = [HttpxPoll(c) for c in clients]
    try:
        gate = asyncio.Semaphore(16)  # set-up at a pace the portal takes without errors

        async def set_up(i: int, client) -> str:
            if token is None:
                return "0123456789ab"
            async with gate:
                return await land_and_start(client, token, FIRST_SALON_ID + i)

        versions = await asyncio.gather(*(set_up(i, c) for i, c in enumerate(clients)))
        if args.client == "raw":
            conns = [RawPoll(str(c.base_url).rstrip("/"), c.cookies.get("portal_session")) for c in clients]
            await asyncio.gather(*(c.aclose() for c in clients))
        # Open every connection before the clock starts, so neither side times a handshake.
        await asyncio.gather(*(c.get(v) for c, v in zip(conns, versions, strict=False)))
        res = Result(servers[0].name, args.duration)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.2
        if gateway_url:  # count the gateway calls made while the owners poll, not the set-up's
            httpx.post(f"{gateway_url}/_control/reset", timeout=10)
        cpu0, own0, all0 = sum(s.cpu() for s in servers), time.process_time(), machine_busy()
        await asyncio.gather(*(poller(c, v, args.interval, start, start + args.duration, res)
                               for c, v in zip(conns, versions, strict=False)))
        res.server_cpu, res.client_cpu = sum(s.cpu() for s in servers) - cpu0, time.process_time() - own0
        res.other_cpu = machine_busy() - all0 - res.server_cpu - res.client_cpu
        if gateway_url:
            res.gateway_calls = Counter(httpx.get(f"{gateway_url}/_control/kinds", timeout=10).json())
        if token is not None:
            res.rss_mb = [mb for s in servers for mb in worker_rss_mb(s.proc.pid)]
        return res
    finally:
        await asyncio.gather(*(c.aclose() for c in conns), *(c.aclose() for c in clients))




def fake_waha(tmp: Path) -> tuple[subprocess.Popen, str]:
    """The tests' fake WAHA as its own process (bench/fake_waha_server.py)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench/fake_waha_server.py"), str(port), "bench-waha-key"],
                            cwd=tmp, env=dict(os.environ) | {"PYTHONPATH": str(ROOT)}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_control/calls", timeout=1).status_code == 200:
                return proc, url
        time.sleep(0.1)
    stop_process(proc, 5)
    raise TimeoutError("fake WAHA did not start")


def portal_side(args, tmp: Path) -> Result:
    token = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "YCLIENTS_", "WAHA_"))}
    env |= {  # run in the temp dir, so a developer's .env plays no part
        "DATABASE_URL": "",  # no database: the portal starts its own PostgreSQL in PORTAL_DATA_DIR
        "PORTAL_DATA_DIR": str(tmp), "SANDBOX": "true", "YCLIENTS_PARTNER_TOKEN": token,
        "LOG_LEVEL": "WARNING",
        "WHATSAPP_GATEWAY": "simulator", "SIMULATOR_STARTING_S": "0", "QR_WAIT_INITIAL_S": "0.05",
    }
    waha = waha_url = None
    with contextlib.ExitStack() as stack:
        if args.gateway == "waha":  # the real adapter over HTTP, webhooks on (a fake that never sends one)
            waha, waha_url = fake_waha(tmp)
            stack.callback(stop_process, waha, 5)
            env |= {"WHATSAPP_GATEWAY": "waha", "WAHA_URL": waha_url, "WAHA_API_KEY": "bench-waha-key",
                    "WAHA_WEBHOOK_HMAC_KEY": "bench-hook-key", "OWNER_RATE_LIMIT": "100000/minute",
                    "LANDING_RATE_LIMIT": "100000/minute", "MAX_WAITING_SESSIONS": "100000"}
        if args.qr_ttl:  # rotate QRs during the run, so some polls answer 200 with a new QR
            env |= {"SIMULATOR_QR_FIRST_TTL_S": str(args.qr_ttl), "SIMULATOR_QR_NEXT_TTL_S": str(args.qr_ttl),
                    "SIMULATOR_QR_COUNT": "1000"}
        pg_dir: Path | None = tmp / "pg"
        if args.instances > 1:  # one PostgreSQL for all of them, as in production
            env["DATABASE_URL"], pg_dir = stack.enter_context(embedded_server()), None
        servers = []
        for n in range(args.instances):
            port = free_port()
            data = tmp / f"instance-{n}"
            data.mkdir(exist_ok=True)
            server = Server("portal", [sys.executable, "-m", "portal", "serve", "--port", str(port),
                                       "--workers", str(args.workers)], port,
                            env | {"PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
                                   "PORTAL_DATA_DIR": str(tmp if pg_dir else data)},
                            cwd=tmp, pg_dir=pg_dir)
            stack.callback(server.stop)
            server.wait_ready("/livez")
            servers.append(server)
        return run_async(run_side(servers, args, token, waha_url))


def bare_side(args) -> Result:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(ROOT / "bench"),
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    server = Server("bare", argv, port, dict(os.environ), cwd=ROOT)
    try:
        server.wait_ready(STATUS_PATH)
        return run_async(run_side([server], args, None))
    finally:
        server.stop()


def tree() -> str:
    """Which portal was measured: others edit the tree while benchmarks run."""
    git = ["git", "-C", str(ROOT)]
    rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "portal", "templates"],
                           capture_output=True, text=True).stdout.strip()
    return f"tree {rev or '?'}{' + uncommitted changes' if dirty else ''}"


def report(args, results: list[Result]) -> bool:
    offered = f"{args.pollers / args.interval:.0f} req/s offered" if args.interval else "closed loop"
    print(f"\n{args.pollers} pollers, interval {args.interval:g} s ({offered}), {args.duration:g} s, "
          f"{args.client} client, {args.gateway} gateway, {args.instances} instance(s) of {args.workers} worker(s), "
          f"{os.cpu_count()} cores, {tree()}")
    print(f"{'side':<7}{'polls':>8}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'204':>8}{'200':>8}{'errors':>8}{'srv CPU%':>10}{'CPU ms/req':>12}{'gen CPU%':>10}{'other%':>8}")
    for r in results:
        n = len(r.latencies) or 1
        print(f"{r.name:<7}{len(r.latencies):>8}{r.rps:>9.1f}{r.pct(.5):>9.2f}{r.pct(.9):>9.2f}{r.pct(.99):>9.2f}"
              f"{r.pct(1):>9.2f}{r.statuses[204]:>8}{r.statuses[200]:>8}{sum(r.errors.values()):>8}"
              f"{100 * r.server_cpu / r.duration:>10.0f}{1000 * r.server_cpu / n:>12.2f}"
              f"{100 * r.client_cpu / r.duration:>10.0f}{max(0.0, 100 * r.other_cpu / r.duration):>8.0f}")
        if r.errors:
            print(f"  {r.name} errors: {dict(r.errors)}")
        if r.other_cpu / r.duration > 0.2:  # e.g. someone's test suite: rerun on a quiet machine
            print(f"  {r.name}: other processes used {100 * r.other_cpu / r.duration:.0f}% CPU meanwhile: noisy")
    for r in results:
        if r.rss_mb:
            print(f"resident memory per worker: {', '.join(f'{mb:.0f} MB' for mb in r.rss_mb)}; "
                  f"target < 100 MB: {'met' if max(r.rss_mb) < 100 else 'MISSED'}")
        if r.gateway_calls or (r.name == "portal" and args.gateway == "waha"):
            total = sum(r.gateway_calls.values())
            rate = total / args.pollers / r.duration
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(r.gateway_calls.items())) or "none"
            print(f"gateway calls: {total} in {r.duration:g} s ({kinds}) = {rate:.4f} per waiting salon per second"
                  f" (a list sweep counts as one); target <= 0.02: {'met' if rate <= 0.02 else 'MISSED'}")
    valid = not any(r.errors for r in results)
    sides = {r.name: r for r in results}
    if "portal" in sides and "bare" in sides:
        portal, bare = sides["portal"], sides["bare"]
        ratio, p99_ratio = portal.rps / bare.rps, portal.pct(.99) / bare.pct(.99)
        print(f"portal/bare: throughput {ratio:.2f}, p99 {p99_ratio:.1f}x")
        # Open loop, both sides serve what is offered, so only latency tells them apart;
        # closed loop, latency is queueing behind the other pollers, so only throughput does.
        if args.interval:
            print(f"target p99 < 50 ms at this load: {'met' if portal.pct(.99) < 50 else 'MISSED'}")
        else:
            print(f"target throughput >= 0.35 x bare (issue 10): {'met' if ratio >= 0.35 else 'MISSED'}")
    if not valid:
        print("INVALID RUN: some requests failed (see errors above)")
    return valid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pollers", type=int, default=200, help="concurrent owners polling (default 200)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of polling per side (default 15)")
    parser.add_argument("--interval", type=float, default=2.0,
                        help="seconds between one poller's polls, as htmx's `every 2s`; 0 = closed loop")
    parser.add_argument("--mode", choices=("both", "portal", "bare"), default="both")
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                        help="httpx (default), or raw sockets for closed-loop runs (see RawPoll)")
    parser.add_argument("--workers", type=int, default=None,
                        help="the portal's worker processes (serve --workers); default: production's, one per"
                             " CPU, with the WAHA adapter, and 1 with the simulator (it needs one)")
    parser.add_argument("--instances", type=int, default=1,
                        help="portal instances on one PostgreSQL, the owners spread over them (WAHA adapter)")
    parser.add_argument("--gateway", choices=("simulator", "waha"), default="simulator",
                        help="the portal's gateway: the in-process simulator, or the WAHA adapter against a fake WAHA")
    parser.add_argument("--qr-ttl", type=float, default=None,
                        help="rotate simulated QRs every this many seconds (default: the portal's, 60 s)")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = (os.cpu_count() or 1) if args.gateway == "waha" else 1
    random.seed(1)  # the same arrival pattern on both sides and across runs
    # Ctrl-C and SIGTERM both unwind through the `finally`s that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="poll-bench-"))
    tmp.chmod(0o755)  # as root, the embedded PostgreSQL runs as another user and needs to get in
    results = []
    try:
        if args.mode in ("both", "portal"):
            results.append(portal_side(args, tmp))
        if args.mode in ("both", "bare"):
            results.append(bare_side(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if report(args, results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Activation under load: the portal against pgbench, and latency while activations wait.

    .venv/bin/python bench/activation_bench.py                    # both parts, defaults
    .venv/bin/python bench/activation_bench.py --part throughput --salons 400 --concurrency 8 \
        --activation-concurrency 8
    .venv/bin/python bench/activation_bench.py --part latency --rate 40

Part 1 (throughput): N distinct salons land, their WhatsApp is marked connected with one
INSERT, then C workers POST /marketplace/activate one after another (an instant partner
stub answers the status read `pending`, then 301). Beside it, pgbench runs the activation's
SQL (SET LOCAL, advisory lock, SELECT ... FOR UPDATE, two UPDATEs, COMMIT, then the event
INSERT) with the same C clients.
The ratio portal/pgbench says how much of the database's rate the whole request keeps.

Part 2 (latency): GET /marketplace/health and the QR poll are sent at a fixed rate for a
window at rest, then for a window while 50 activations wait on a partner that takes 10 s.

Part 3 (burst): 50 owners press "Activate" at once (htmx, each with its session cookie)
against a partner that takes 3 s; each then does what its panel does -- a busy answer's
countdown (`load delay:…ms`), then the same POST again -- until YClients' redirect. All
must end activated; the time from the press to the redirect is reported (p50/p99/max).

Part 4 (overhead): what activation adds to the partner's own latency: 40 activations one at
a time against a partner answering after 50 ms, then 40 calls of the partner alone (the same
request, from this process), p50 of each and the difference.

    .venv/bin/python bench/activation_bench.py --part burst      # or: --part overhead

One embedded PostgreSQL (pgserver), the partner stub (bench/partner_stub.py) and the portal
(`python -m portal serve`) run as separate processes; the load generator is this process.
All of them share the machine's cores. See bench/README.md, section "Activation".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.machine import cpu_seconds, free_port, machine_busy, run_async, stop_process  # noqa: E402
from portal.platform.embedded_postgres import EmbeddedPostgres  # noqa: E402
from portal.platform.locks import ACTIVATION_NAMESPACE  # noqa: E402
from tests.helpers.landing import landing_query  # noqa: E402

APP_ID = 1
HTMX = {"HX-Request": "true"}
STATUS_PATH = "/onboarding/whatsapp/status"
VERSION = re.compile(r'hx-get="/onboarding/whatsapp/status\?v=([0-9a-f]+)"')
# YClients salon ids of each group of rows, far apart so the groups never meet.
THROUGHPUT_IDS, WAITING_IDS, POLLER_IDS, PGBENCH_IDS = 700_000, 760_000, 770_000, 800_000
PGBENCH_CANDIDATES = [
    ROOT / ".venv/lib/python3.11/site-packages/pgserver/pginstall/bin/pgbench",  # matches the server
    Path("/usr/lib/postgresql/15/bin/pgbench"),
]


# ---------------------------------------------------------------- processes and CPU







def wait_for_quiet(max_wait_s: float, limit: float = 0.3) -> None:
    """Wait (up to max_wait_s) until the machine is idle but for us: the cores are shared, and
    someone else's test run or benchmark would be measured too. `limit` is in cores."""
    deadline, said = time.monotonic() + max_wait_s, False
    while True:
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(1.0)
        busy = (machine_busy() - b0) / (time.monotonic() - t0)
        if busy < limit:
            return
        if time.monotonic() > deadline:
            print(f"    machine still busy ({100 * busy:.0f}% of a core used by others): measuring anyway", flush=True)
            return
        if not said:
            print(f"    machine busy ({100 * busy:.0f}% of a core used by others): waiting up to {max_wait_s:.0f} s",
                  flush=True)
            said = True


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: pgbench
    return usage.ru_utime + usage.ru_stime


class Proc:
    """A server subprocess in its own session; stopped with SIGINT (uvicorn's graceful stop)."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict):
        self.name, self.port = name, port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL)

    def wait_ready(self, path: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + path, timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {path} within {timeout_s:.0f} s")

    def cpu(self) -> float:
        return cpu_seconds([self.proc.pid], reaped=True)

    def stop(self) -> None:
        stop_process(self.proc, 15)


class Postgres:
    """The embedded server, started here so the bench can arrange rows and run pgbench on it."""

    def __init__(self, folder: Path):
        self.embedded = EmbeddedPostgres(folder)
        self.dsn = self.embedded.start()

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.embedded.folder / "postmaster.pid").read_text().split()[0])
        return None

    def cpu(self) -> float:
        pid = self.pid()
        return cpu_seconds([pid], reaped=True) if pid else 0.0

    def pgbench_conn_args(self) -> list[str]:
        parts = urlsplit(self.dsn)
        query = parse_qs(parts.query)
        args = ["-U", parts.username or "postgres"]
        if "host" in query:
            args += ["-h", query["host"][0]]
        elif parts.hostname:
            args += ["-h", parts.hostname]
        if parts.port:
            args += ["-p", str(parts.port)]
        return [*args, parts.path.lstrip("/") or "postgres"]

    def stop(self) -> None:
        self.embedded.stop()


@dataclass
class Stack:
    tmp: Path
    pg: Postgres
    stub: Proc
    portal: Proc
    token: str

    def cpu(self) -> dict[str, float]:
        return {"portal": self.portal.cpu(), "stub": self.stub.cpu(), "postgres": self.pg.cpu(),
                "bench": time.process_time(), "machine": machine_busy()}


def start_stack(args, tmp: Path) -> Stack:
    token = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PORTAL_", "YCLIENTS_", "WAHA_", "SIMULATOR_", "ACTIVATION_", "DATABASE_"))}
    pg = Postgres(tmp / "pg")
    stub = portal = None
    try:
        stub_port = free_port()
        stub = Proc("partner stub", [sys.executable, str(ROOT / "bench" / "partner_stub.py"), "--port", str(stub_port),
                                     "--token", token, "--app-id", str(APP_ID)], stub_port, env)
        port = free_port()
        portal_env = env | {
            "DATABASE_URL": pg.dsn, "PORTAL_DATA_DIR": str(tmp / "data"), "SANDBOX": "true",
            "YCLIENTS_PARTNER_TOKEN": token, "YCLIENTS_API_URL": stub.base_url, "YCLIENTS_APP_ID": str(APP_ID),
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "LOG_LEVEL": "WARNING",
            "ACTIVATION_CONCURRENCY": str(args.activation_concurrency),
            "WHATSAPP_GATEWAY": "simulator", "SIMULATOR_STARTING_S": "0", "QR_WAIT_INITIAL_S": "0.05",
            # Every owner lands from 127.0.0.1 here: the per-client landing limit is not measured.
            "LANDING_RATE_LIMIT": "100000/minute",
            "YCLIENTS_REDIRECT_HOSTS": "yclients.example",  # where the stub's 301 points
        }
        # --profile: the portal under cProfile (slower: for where the time goes, not for rates).
        profile = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())] if args.profile else []
        portal = Proc("portal", [sys.executable, *profile, "-m", "portal", "serve", "--port", str(port)], port,
                      portal_env)
        stub.wait_ready("/_bench/stats")
        portal.wait_ready("/readyz")  # the lifespan (pool, migrations) has run
        return Stack(tmp, pg, stub, portal, token)
    except BaseException:
        for proc in (portal, stub):
            if proc is not None:
                proc.stop()
        pg.stop()
        raise


# ---------------------------------------------------------------- HTTP

class RawConn:
    """One keep-alive HTTP/1.1 connection, written by hand: httpx spends about a millisecond
    of CPU per request, which on 2 shared cores would be taken from the portal; this costs
    tens of microseconds. Enough HTTP for the portal's answers (Content-Length, no chunks)."""

    def __init__(self, base_url: str):
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port, self.streams = int(port), None
        self.headers: dict[bytes, bytes] = {}  # of the last answer, names lowercased

    async def connect(self) -> None:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, headers: str = "", body: bytes = b"") -> tuple[int, bytes]:
        await self.connect()
        reader, writer = self.streams
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
            if body:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            raw = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            self.headers = {}
            for line in raw.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                self.headers[name] = value.strip()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise ValueError("chunked answer: not expected from the portal")
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            data = await reader.readexactly(length) if length else b""
            if close:
                self.close()
            return int(raw[9:12]), data
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class RawPool:
    """Open-loop requests need as many connections as are in flight: reuse idle ones, but not
    one idle long enough that uvicorn may be closing it (its keep-alive timeout is 5 s)."""

    MAX_IDLE_S = 3.0

    def __init__(self, base_url: str):
        self.base_url, self.idle = base_url, []  # [(conn, idle since)]

    async def request(self, *a, **kw) -> tuple[int, bytes]:
        conn = None
        while self.idle and conn is None:
            conn, since = self.idle.pop()
            if time.monotonic() - since > self.MAX_IDLE_S:
                conn.close()
                conn = None
        conn = conn or RawConn(self.base_url)
        status, data = await conn.request(*a, **kw)  # on error the connection is dropped
        self.idle.append((conn, time.monotonic()))
        return status, data

    async def warm(self, n: int) -> None:
        self.close()
        conns = [RawConn(self.base_url) for _ in range(n)]
        await asyncio.gather(*(c.connect() for c in conns))
        self.idle = [(c, time.monotonic()) for c in conns]

    def close(self) -> None:
        for conn, _ in self.idle:
            conn.close()
        self.idle = []


async def land_for_token(client: httpx.AsyncClient, token: str, salon_id: int) -> str:
    r = await client.get(f"/auth/yclients/redirect?{landing_query(token, salon_id)}",
                         headers={"Accept": "application/json"})
    if r.status_code != 200:
        raise RuntimeError(f"landing for salon {salon_id}: {r.status_code} {r.text[:200]}")
    return r.json()["token"]


async def land_many(base_url: str, token: str, salon_ids: list[int], parallel: int = 8) -> list[str]:
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def one(sid: int) -> str:
            async with gate:
                return await land_for_token(client, token, sid)
        return await asyncio.gather(*(one(sid) for sid in salon_ids))


async def land_and_start_qr(base_url: str, token: str, salon_id: int) -> tuple[str, str]:
    """A salon owner's browser: land (session cookie), start the QR; (cookie, poll version)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.get(f"/auth/yclients/redirect?{landing_query(token, salon_id)}", follow_redirects=False)
        if r.status_code != 303 or "portal_session" not in client.cookies:
            raise RuntimeError(f"landing for salon {salon_id}: {r.status_code} {r.text[:200]}")
        r = await client.post("/onboarding/whatsapp/start", headers=HTMX)
        match = VERSION.search(r.text)
        if r.status_code != 200 or match is None:
            raise RuntimeError(f"QR start for salon {salon_id}: {r.status_code} {r.text[:200]!r}")
        return client.cookies["portal_session"], match.group(1)


async def connect_whatsapp(dsn: str, first_id: int, last_id: int) -> int:
    """Arrange, as the tests do: these salons' WhatsApp is linked. One INSERT."""
    conn = await asyncpg.connect(dsn)
    try:
        result = await conn.execute(
            """INSERT INTO whatsapp_links (salon_id, session_name, status, phone, connected_at)
               SELECT id, 'salon-' || yclients_salon_id, 'connected', '79160000000', now()
               FROM salons WHERE yclients_salon_id BETWEEN $1 AND $2
               ON CONFLICT (salon_id) DO UPDATE SET status = 'connected'""", first_id, last_id)
        return int(result.split()[-1])
    finally:
        await conn.close()


def activation_body(token: str) -> bytes:
    return json.dumps({"token": token}).encode()


def outcome_of(status: int, data: bytes) -> str:
    """'200 ACTIVATED', '503 ACTIVATION_BUSY', ...: the status and the portal's code."""
    try:
        body = json.loads(data)
    except ValueError:
        return f"{status} (no JSON)"
    if status == 200:
        return "200 ALREADY_ACTIVE" if body.get("already_active") else "200 ACTIVATED"
    return f"{status} {body.get('code', '?')}"


# ---------------------------------------------------------------- part 1: throughput

@dataclass
class Rate:
    name: str
    count: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of CPU per component
    outcomes: Counter = field(default_factory=Counter)

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def run_activations(base_url: str, tokens: list[str], concurrency: int, stack: Stack | None = None) -> Rate:
    work = iter(tokens)
    conns = [RawConn(base_url) for _ in range(concurrency)]
    await asyncio.gather(*(c.connect() for c in conns))  # handshakes before the clock
    outcomes: Counter = Counter()

    async def worker(conn: RawConn) -> None:
        for token in work:
            try:
                status, data = await conn.request("POST", "/marketplace/activate", body=activation_body(token))
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                outcomes[f"error {type(exc).__name__}"] += 1
                continue
            outcomes[outcome_of(status, data)] += 1

    before = stack.cpu() if stack else {}
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    after = stack.cpu() if stack else {}
    for c in conns:
        c.close()
    rate = Rate("portal", outcomes["200 ACTIVATED"], elapsed, {k: after[k] - before[k] for k in after}, outcomes)
    return rate


PGBENCH_SCRIPT = """\
-- The portal's activation transaction (portal/activation.py), statement for statement,
-- without HTTP, JWT, JSON and the partner call.
\\set id {first} + random(1, {rows})
BEGIN;
SET LOCAL idle_in_transaction_session_timeout = {idle_ms};
SELECT pg_try_advisory_xact_lock({namespace}, :id) AS locked \\gset
\\if :locked
SELECT s.id AS sid, s.yclients_salon_id, s.integration_status, s.install_generation + 1 AS gen,
       l.status AS link_status
FROM salons s LEFT JOIN whatsapp_links l ON l.salon_id = s.id
WHERE s.yclients_salon_id = :id FOR UPDATE OF s \\gset
UPDATE salons SET integration_status = 'activating', api_key_hash = '{hash}',
       api_key_prefix = 'sk_benc', updated_at = now() WHERE id = :sid;
UPDATE salons SET integration_status = 'active', activated_at = now(),
       install_generation = :gen, last_error = NULL, updated_at = now() WHERE id = :sid;
COMMIT;
INSERT INTO marketplace_events (salon_id, event_type, payload)
       VALUES (:sid, 'integration_activated', '{payload}'::jsonb);
\\else
COMMIT;
\\endif
"""


def pgbench_path(given: str | None) -> str:
    for path in ([Path(given)] if given else PGBENCH_CANDIDATES):
        if path.is_file():
            return str(path)
    found = shutil.which("pgbench")
    if found:
        return found
    raise FileNotFoundError("pgbench not found; pass --pgbench PATH")


async def arrange_pgbench_rows(dsn: str, rows: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO salons (yclients_salon_id, name, landed_at)"
            " SELECT g, 'pgbench ' || g, now() FROM generate_series($1::bigint, $2::bigint) g"
            " ON CONFLICT (yclients_salon_id) DO NOTHING", PGBENCH_IDS + 1, PGBENCH_IDS + rows)
        await conn.execute("ANALYZE salons; ANALYZE whatsapp_links; ANALYZE marketplace_events")
    finally:
        await conn.close()
    await connect_whatsapp(dsn, PGBENCH_IDS + 1, PGBENCH_IDS + rows)


def run_pgbench(args, stack: Stack) -> tuple[Rate, str]:
    payload = json.dumps({"activation_mode": "transaction", "install_generation": 1, "api_key_prefix": "sk_benc"})
    script = stack.tmp / "activation.sql"
    script.write_text(PGBENCH_SCRIPT.format(
        first=PGBENCH_IDS, rows=args.pgbench_rows, idle_ms=(30 + 15) * 1000, namespace=ACTIVATION_NAMESPACE,
        hash="0" * 64, payload=payload))
    argv = [pgbench_path(args.pgbench), "-n", "-M", args.pgbench_protocol, "-c", str(args.concurrency),
            "-j", str(min(2, args.concurrency)), "-T", str(args.pgbench_seconds), "-f", str(script),
            *stack.pg.pgbench_conn_args()]
    pg0, own0, all0 = stack.pg.cpu(), children_cpu(), machine_busy()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PGAPPNAME": "pgbench"})
    pg1, own1, all1 = stack.pg.cpu(), children_cpu(), machine_busy()
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    tx = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    count = int(tx.group(1))
    rate = Rate("pgbench", count, count / float(tps.group(1)),
                {"postgres": pg1 - pg0, "pgbench": own1 - own0, "machine": all1 - all0})
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    rate.outcomes["committed"] = count
    if failed and int(failed.group(1)):
        rate.outcomes["failed"] = int(failed.group(1))
    return rate, done.stdout


async def part_throughput(args, stack: Stack) -> dict:
    base = stack.portal.base_url
    warm = max(args.concurrency * 5, 20)
    ids = [THROUGHPUT_IDS + i for i in range(1, warm + args.salons + 1)]
    print(f"\n[1] landing {len(ids)} salons ({warm} for warm-up) ...", flush=True)
    tokens = await land_many(base, stack.token, ids)
    linked = await connect_whatsapp(stack.pg.dsn, ids[0], ids[-1])
    print(f"    WhatsApp marked connected for {linked}; warm-up, then {args.salons} activations "
          f"with {args.concurrency} workers ...", flush=True)
    await run_activations(base, tokens[:warm], args.concurrency)
    wait_for_quiet(args.quiet_wait)
    portal = await run_activations(base, tokens[warm:], args.concurrency, stack)
    print(f"    portal: {portal.count} activated in {portal.seconds:.2f} s; outcomes {dict(portal.outcomes)}",
          flush=True)
    print(f"[1] pgbench: {args.pgbench_rows} fresh rows, -c {args.concurrency} -T {args.pgbench_seconds} "
          f"-M {args.pgbench_protocol} ...", flush=True)
    await arrange_pgbench_rows(stack.pg.dsn, args.pgbench_rows)
    wait_for_quiet(args.quiet_wait)
    bench, output = run_pgbench(args, stack)
    if args.verbose:
        print(output)
    return {"portal": portal, "pgbench": bench}


def report_throughput(args, res: dict) -> bool:
    portal, bench = res["portal"], res["pgbench"]
    ratio = portal.per_s / bench.per_s
    print(f"\n== Part 1: activations/s, {args.salons} distinct salons, concurrency {args.concurrency} "
          f"(ACTIVATION_CONCURRENCY={args.activation_concurrency}), {os.cpu_count()} cores")
    print(f"{'':<9}{'count':>7}{'seconds':>9}{'per s':>9}   CPU ms per activation (busy machine %)")
    for r in (portal, bench):
        parts = {k: v for k, v in r.cpu.items() if k != "machine"}
        cpu = "  ".join(f"{k} {1000 * v / max(r.count, 1):.2f}" for k, v in parts.items())
        busy = 100 * r.cpu.get("machine", 0) / r.seconds / (os.cpu_count() or 1)
        print(f"{r.name:<9}{r.count:>7}{r.seconds:>9.2f}{r.per_s:>9.1f}   {cpu}  ({busy:.0f}%)")
        other = r.cpu.get("machine", 0) - sum(parts.values())
        if other / r.seconds > 0.2:
            print(f"  {r.name}: other processes used {100 * other / r.seconds:.0f}% of a core meanwhile: noisy")
    bad = {k: v for k, v in portal.outcomes.items() if k != "200 ACTIVATED"}
    print(f"portal/pgbench = {ratio:.3f}   target >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'}")
    if bad:
        print(f"  portal answers other than 200 ACTIVATED: {bad}")
    if bench.outcomes.get("failed"):
        print(f"  pgbench failed transactions: {bench.outcomes['failed']}")
    print("  (the portal's figure includes HTTP, JWT, JSON, the session reset asyncpg runs on each"
          " pool release, and a real HTTP round trip to the partner stub; pgbench's is the SQL alone)")
    return not bad


# ---------------------------------------------------------------- part 2: latency while activations wait

@dataclass
class Series:
    latencies: list[float] = field(default_factory=list)
    slow: list[tuple[float, float]] = field(default_factory=list)  # (latency, when sent: s into the window)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)

    def pct(self, q: float, after_s: float | None = None) -> float:
        """The q-quantile in ms; with after_s, of the requests sent at least after_s into the window."""
        lat = sorted(self.latencies if after_s is None else [lat for lat, at in self.slow if at >= after_s])
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


async def open_loop(send, rate: float, seconds: float, phase: float, series: Series) -> None:
    """Send at fixed times, whether or not earlier answers came back (no coordinated omission)."""
    loop = asyncio.get_running_loop()
    window_start = loop.time()
    start, tasks = window_start + phase / rate, []

    async def one() -> None:
        sent = time.perf_counter()
        try:
            status = await send()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            series.errors[type(exc).__name__] += 1
            return
        latency = time.perf_counter() - sent
        series.latencies.append(latency)
        series.slow.append((latency, loop.time() - window_start - latency))
        series.statuses[status] += 1

    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)


class Probes:
    """GET /marketplace/health and the QR poll of several owners, at a fixed rate each."""

    def __init__(self, base_url: str, owners: list[tuple[str, str]]):
        self.health_pool, self.poll_pool = RawPool(base_url), RawPool(base_url)
        self.owners = [list(o) for o in owners]  # [cookie, version]
        self.turn = 0

    async def health(self) -> int:
        status, _ = await self.health_pool.request("GET", "/marketplace/health")
        return status

    async def poll(self) -> int:
        owner = self.owners[self.turn % len(self.owners)]
        self.turn += 1
        headers = f"HX-Request: true\r\nCookie: portal_session={owner[0]}\r\n"
        status, data = await self.poll_pool.request("GET", f"{STATUS_PATH}?v={owner[1]}", headers)
        if status == 200 and (match := VERSION.search(data.decode())):
            owner[1] = match.group(1)  # the widget changed (a new QR): poll for the next change
        return status

    async def warm(self) -> None:
        await asyncio.gather(self.health_pool.warm(4), self.poll_pool.warm(4))  # no handshakes timed

    async def window(self, rate: float, seconds: float, warm: bool = True) -> tuple[Series, Series]:
        if warm:
            await self.warm()
        health, poll = Series(), Series()
        await asyncio.gather(open_loop(self.health, rate, seconds, 0.0, health),
                             open_loop(self.poll, rate, seconds, 0.5, poll))
        return health, poll

    def close(self) -> None:
        self.health_pool.close()
        self.poll_pool.close()


async def part_latency(args, stack: Stack) -> dict:
    base = stack.portal.base_url
    n = args.waiting
    print(f"\n[2] landing {args.pollers} QR owners and {n} salons to activate ...", flush=True)
    owners = [await land_and_start_qr(base, stack.token, POLLER_IDS + i) for i in range(1, args.pollers + 1)]
    ids = [WAITING_IDS + i for i in range(1, n + 1)]
    tokens = await land_many(base, stack.token, ids)
    await connect_whatsapp(stack.pg.dsn, ids[0], ids[-1])
    probes = Probes(base, owners)
    await probes.window(args.rate, 1.0)  # warm-up: first renders, pool connections
    wait_for_quiet(args.quiet_wait)
    print(f"    at rest: {args.rate:g} req/s each for {args.window:g} s ...", flush=True)
    rest = await probes.window(args.rate, args.window)

    async with httpx.AsyncClient(base_url=stack.stub.base_url) as stub:
        (await stub.put("/_bench/delay", params={"s": args.partner_delay})).raise_for_status()
    conns = [RawConn(base) for _ in range(n)]
    await asyncio.gather(*(c.connect() for c in conns))

    async def activate(conn: RawConn, token: str) -> tuple[str, float]:
        sent = time.perf_counter()
        try:
            status, data = await conn.request("POST", "/marketplace/activate", body=activation_body(token))
            return outcome_of(status, data), time.perf_counter() - sent
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            return f"error {type(exc).__name__}", time.perf_counter() - sent
        finally:
            conn.close()

    print(f"    under load: {n} activations fired at once, partner answers after {args.partner_delay:g} s; "
          f"probing for {args.partner_delay:g} s ...", flush=True)
    await probes.warm()
    waiting = [asyncio.create_task(activate(c, t)) for c, t in zip(conns, tokens, strict=False)]
    load = await probes.window(args.rate, args.partner_delay, warm=False)
    answers = await asyncio.gather(*waiting)
    probes.close()
    async with httpx.AsyncClient(base_url=stack.stub.base_url) as stub:
        (await stub.put("/_bench/delay", params={"s": 0})).raise_for_status()
    outcomes: dict[str, list[float]] = {}
    for outcome, seconds in answers:
        outcomes.setdefault(outcome, []).append(seconds)
    return {"rest": rest, "load": load, "outcomes": outcomes}


def report_latency(args, res: dict) -> bool:
    rest, load = res["rest"], res["load"]
    skip = args.arrival_s
    print(f"\n== Part 2: latency at {args.rate:g} req/s each, at rest ({args.window:g} s) vs while {args.waiting}"
          f" activations wait on a {args.partner_delay:g} s partner (ACTIVATION_CONCURRENCY="
          f"{args.activation_concurrency}), {args.pollers} QR owners")
    print(f"{'endpoint':<22}{'n rest':>7}{'p50 rest':>10}{'p99 rest':>10}{'n load':>8}{'p50 load':>10}"
          f"{'p99 load':>10}{'max load':>10}{'p99 x':>8}  target <= 2x   p99 load after {skip:g} s (x rest)")
    ok = True
    for i, name in enumerate(("/marketplace/health", "QR poll")):
        r, busy = rest[i], load[i]
        ratio = busy.pct(.99) / r.pct(.99)
        later = busy.pct(.99, after_s=skip)
        print(f"{name:<22}{len(r.latencies):>7}{r.pct(.5):>10.2f}{r.pct(.99):>10.2f}{len(busy.latencies):>8}"
              f"{busy.pct(.5):>10.2f}{busy.pct(.99):>10.2f}{busy.pct(1):>10.2f}{ratio:>8.2f}  "
              f"{'met' if ratio <= 2 else 'MISSED':<14}"
              f"{later:.2f} ({later / r.pct(.99):.2f})")
        for label, s in (("rest", r), ("load", busy)):
            slowest = ", ".join(f"{1000 * lat:.1f} ms sent at {at:.2f} s"
                                for lat, at in sorted(s.slow, reverse=True)[:3])
            print(f"  {label} slowest: {slowest}")
            wrong = {k: v for k, v in s.statuses.items() if k not in (200, 204)}
            if wrong or s.errors:
                ok = False
                print(f"  {name} {label}: unexpected statuses {wrong} errors {dict(s.errors)}")
    samples = args.rate * args.window
    print(f"  (milliseconds; p99 of ~{samples:.0f} samples is about the {max(1, round(samples / 100))}th slowest;"
          f" the load window starts as the {args.waiting} activations are sent)")
    print(f"activations ({args.waiting}):")
    for outcome, secs in sorted(res["outcomes"].items()):
        print(f"  {outcome:<26}{len(secs):>4}   answered after {min(secs):.2f}-{max(secs):.2f} s")
    return ok


# ---------------------------------------------------------------- part 3: a burst of owners

BURST_IDS, OVERHEAD_IDS = 780_000, 790_000
BUSY_DELAY = re.compile(rb'data-state="busy".*?hx-trigger="load delay:(\d+)ms"', re.S)


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: of 50 values, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


async def land_with_cookie(base_url: str, token: str, salon_id: int) -> str:
    """A salon owner's browser after the landing: its session cookie."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        r = await client.get(f"/auth/yclients/redirect?{landing_query(token, salon_id)}", follow_redirects=False)
        if r.status_code != 303 or "portal_session" not in client.cookies:
            raise RuntimeError(f"landing for salon {salon_id}: {r.status_code} {r.text[:200]}")
        return client.cookies["portal_session"]


async def set_partner_delay(stack: Stack, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=stack.stub.base_url) as stub:
        (await stub.put("/_bench/delay", params={"s": seconds})).raise_for_status()


async def press_until_done(base_url: str, cookie: str) -> tuple[str, float, int]:
    """One owner: press, then follow the panel's own retries. (outcome, seconds, posts)."""
    conn = RawConn(base_url)
    headers = f"HX-Request: true\r\nCookie: portal_session={cookie}\r\n"
    started, posts = time.perf_counter(), 0
    try:
        while True:
            posts += 1
            status, data = await conn.request("POST", "/marketplace/activate", headers)
            if b"hx-redirect" in conn.headers:
                return "activated", time.perf_counter() - started, posts
            busy = BUSY_DELAY.search(data)
            if status != 200 or busy is None:
                return f"stopped: {status} {data[:80]!r}", time.perf_counter() - started, posts
            await asyncio.sleep(int(busy.group(1)) / 1000)  # the countdown, then the panel posts again
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return f"error {type(exc).__name__}", time.perf_counter() - started, posts
    finally:
        conn.close()


async def part_burst(args, stack: Stack) -> dict:
    base, n = stack.portal.base_url, args.burst
    print(f"\n[3] landing {n} owners ...", flush=True)
    ids = [BURST_IDS + i for i in range(1, n + 1)]
    gate = asyncio.Semaphore(8)

    async def land(sid: int) -> str:
        async with gate:
            return await land_with_cookie(base, stack.token, sid)

    cookies = await asyncio.gather(*(land(sid) for sid in ids))
    await connect_whatsapp(stack.pg.dsn, ids[0], ids[-1])
    await set_partner_delay(stack, args.burst_partner_delay)
    wait_for_quiet(args.quiet_wait)
    print(f"    {n} owners press at once; the partner answers after {args.burst_partner_delay:g} s ...", flush=True)
    answers = await asyncio.gather(*(press_until_done(base, c) for c in cookies))
    await set_partner_delay(stack, 0)
    return {"answers": answers}


def report_burst(args, res: dict) -> bool:
    answers = res["answers"]
    done = [secs for outcome, secs, _ in answers if outcome == "activated"]
    posts = [p for _, _, p in answers]
    print(f"\n== Part 3: {args.burst} owners press at once, partner {args.burst_partner_delay:g} s, "
          f"ACTIVATION_CONCURRENCY={args.activation_concurrency}, one portal process")
    print(f"activated without a click: {len(done)} of {len(answers)}")
    if done:
        print(f"press to YClients' redirect: p50 {quantile(done, .5):.2f} s, p99 {quantile(done, .99):.2f} s,"
              f" max {max(done):.2f} s")
    print(f"posts per owner (the press and the panel's own retries): mean {sum(posts) / len(posts):.1f},"
          f" max {max(posts)}")
    for outcome, count in Counter(o for o, _, _ in answers if o != "activated").items():
        print(f"  {count} x {outcome}")
    return len(done) == len(answers)


# ---------------------------------------------------------------- part 4: overhead over the partner

async def part_overhead(args, stack: Stack) -> dict:
    base, n = stack.portal.base_url, args.overhead_runs
    print(f"\n[4] landing {n} salons ...", flush=True)
    ids = [OVERHEAD_IDS + i for i in range(1, n + 1)]
    tokens = await land_many(base, stack.token, ids)
    await connect_whatsapp(stack.pg.dsn, ids[0], ids[-1])
    await set_partner_delay(stack, args.overhead_partner_delay)
    wait_for_quiet(args.quiet_wait)
    portal, partner = RawConn(base), RawConn(stack.stub.base_url)
    await asyncio.gather(portal.connect(), partner.connect())
    print(f"    {n} activations one at a time, then the partner alone {n} times "
          f"(it answers after {1000 * args.overhead_partner_delay:g} ms) ...", flush=True)
    through_portal, alone, outcomes = [], [], Counter()
    for token in tokens:
        sent = time.perf_counter()
        status, data = await portal.request("POST", "/marketplace/activate", body=activation_body(token))
        through_portal.append(time.perf_counter() - sent)
        outcomes[outcome_of(status, data)] += 1
    auth = f"Authorization: Bearer {stack.token}\r\n"
    for sid in ids:
        body = json.dumps({"salon_id": sid, "application_id": APP_ID, "api_key": "k" * 32}).encode()
        sent = time.perf_counter()
        await partner.request("POST", "/partner/callback/redirect", auth, body)
        alone.append(time.perf_counter() - sent)
    portal.close()
    partner.close()
    await set_partner_delay(stack, 0)
    return {"portal": through_portal, "alone": alone, "outcomes": outcomes}


def report_overhead(args, res: dict) -> bool:
    portal, alone = res["portal"], res["alone"]
    added = 1000 * (quantile(portal, .5) - quantile(alone, .5))
    print(f"\n== Part 4: what activation adds to the partner's latency ({len(portal)} in a row, partner "
          f"{1000 * args.overhead_partner_delay:g} ms)")
    print(f"{'':<24}{'min ms':>9}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
    for name, values in (("through the portal", portal), ("the partner alone", alone)):
        print(f"{name:<24}{1000 * min(values):>9.2f}{1000 * quantile(values, .5):>9.2f}"
              f"{1000 * quantile(values, .9):>9.2f}{1000 * max(values):>9.2f}")
    # On shared cores the minimum is the least disturbed sample: reported beside the target's p50.
    print(f"activation adds (p50): {added:.2f} ms (min: {1000 * (min(portal) - min(alone)):.2f} ms)"
          f"   target <= 5 ms: {'met' if added <= 5 else 'MISSED'}")
    bad = {k: v for k, v in res["outcomes"].items() if k != "200 ACTIVATED"}
    if bad:
        print(f"  answers other than 200 ACTIVATED: {bad}")
    return not bad


# ---------------------------------------------------------------- main



async def apply_pg_settings(dsn: str, settings: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for setting in settings:
            name, _, value = setting.partition("=")
            if not re.fullmatch(r"[a-z_]+", name):
                raise SystemExit(f"--pg-set: not a setting name: {name!r}")
            await conn.execute(f"ALTER SYSTEM SET {name} = {_quote(value)}")
        await conn.execute("SELECT pg_reload_conf()")
        print(f"PostgreSQL: {', '.join(settings)}", flush=True)
    finally:
        await conn.close()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("both", "throughput", "latency", "burst", "overhead"), default="both",
                        help="both (throughput and latency, the default), or one part")
    parser.add_argument("--salons", type=int, default=2000,
                        help="distinct salons activated in part 1 (default 2000: a few seconds of work)")
    parser.add_argument("--concurrency", type=int, default=4, help="activation workers and pgbench clients (default 4)")
    parser.add_argument("--activation-concurrency", type=int, default=4,
                        help="the portal's ACTIVATION_CONCURRENCY (default 4, the portal's default)")
    parser.add_argument("--pgbench", help="pgbench binary (default: the pgserver wheel's, matching the server)")
    parser.add_argument("--pgbench-seconds", type=int, default=10, help="pgbench -T (default 10)")
    parser.add_argument("--pgbench-rows", type=int, default=20000,
                        help="fresh salon rows pgbench picks from (default 20000)")
    parser.add_argument("--pgbench-protocol", choices=("simple", "extended", "prepared"), default="prepared",
                        help="pgbench -M (default prepared: asyncpg prepares and caches statements too)")
    parser.add_argument("--waiting", type=int, default=50, help="activations waiting on the slow partner (default 50)")
    parser.add_argument("--partner-delay", type=float, default=10.0, help="the slow partner's delay, s (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="req/s of health and of the poll, each (default 20)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the at-rest window (default 10)")
    parser.add_argument("--arrival-s", type=float, default=0.5,
                        help="also report the load p99 without the first this many s (the 50 arriving at once)")
    parser.add_argument("--pollers", type=int, default=40,
                        help="QR owners the polls rotate over (default 40: at 20 req/s, each every 2 s as htmx does)")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="before each measurement, wait up to this many s for other processes to go idle")
    parser.add_argument("--burst", type=int, default=50, help="owners pressing at once in part 3 (default 50)")
    parser.add_argument("--burst-partner-delay", type=float, default=3.0,
                        help="the partner's delay in part 3, s (default 3)")
    parser.add_argument("--overhead-runs", type=int, default=40, help="activations in a row in part 4 (default 40)")
    parser.add_argument("--overhead-partner-delay", type=float, default=0.05,
                        help="the partner's delay in part 4, s (default 0.05)")
    parser.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL setting for the run (ALTER SYSTEM, then reload), e.g."
                             " synchronous_commit=off to see what the commits' flushes cost; repeatable")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the portal under cProfile and write its stats to FILE (rates are then not valid)")
    parser.add_argument("--verbose", action="store_true", help="print pgbench's own output")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally below
    tmp = Path(tempfile.mkdtemp(prefix="activation-bench-"))
    tmp.chmod(0o755)  # as root, the embedded PostgreSQL runs as another user and needs to get in
    stack = None
    ok = True
    try:
        print("starting PostgreSQL, the partner stub and the portal ...", flush=True)
        stack = start_stack(args, tmp)
        if args.pg_set:
            run_async(apply_pg_settings(stack.pg.dsn, args.pg_set))
        if args.part in ("both", "throughput"):
            ok &= report_throughput(args, run_async(part_throughput(args, stack)))
        if args.part in ("both", "latency"):
            ok &= report_latency(args, run_async(part_latency(args, stack)))
        if args.part == "burst":
            ok &= report_burst(args, run_async(part_burst(args, stack)))
        if args.part == "overhead":
            ok &= report_overhead(args, run_async(part_overhead(args, stack)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if stack is not None:
            stack.portal.stop()
            stack.stub.stop()
            stack.pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""What reading YClients' install status before every activation callback costs.

    .venv/bin/python bench/install_status_bench.py [--calls 500]

Starts bench/partner_stub.py in its own process (an instant partner on 127.0.0.1) and times,
one call after another through the portal's own PartnerClient: the install status read
(`GET /salon/{id}/application/{app}`, the added call) and the callback
(`POST /partner/callback/redirect`, which every activation made before). The added latency
of an activation is one status read; against the real YClients it is one more round trip
to api.yclients.com. See bench/README.md, section "Install status before the callback".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.activation.partner import PartnerClient
from portal.salons.ids import YclientsSalonId

TOKEN = "bench-partner-token"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return (f"{name:<28} n={len(ms)}  p50={p(0.5):.2f} ms  p95={p(0.95):.2f} ms  p99={p(0.99):.2f} ms"
            f"  mean={statistics.fmean(ms):.2f} ms")


async def measure(url: str, calls: int) -> tuple[list[float], list[float]]:
    reads, callbacks = [], []
    async with PartnerClient(url, TOKEN, timeout_s=10, redirect_hosts=("yclients.example",)) as partner:
        for i in range(calls):
            salon = YclientsSalonId(900_000 + i)
            started = time.perf_counter()
            assert await partner.install_status(salon, 1) == "pending"
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            await partner.finish_install(yclients_salon_id=salon, application_id=1, api_key="sk_bench",
                                         webhook_urls=[])
            callbacks.append(time.perf_counter() - started)
    return reads, callbacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    port = _free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).parent / "partner_stub.py"),
                             "--port", str(port), "--token", TOKEN])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_bench/stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        reads, callbacks = asyncio.run(measure(url, args.calls))
    finally:
        stub.terminate()
        stub.wait(10)
    print(_summary("install status (added)", reads))
    print(_summary("callback (as before)", callbacks))
    added, before = statistics.median(reads), statistics.median(callbacks)
    print(f"added share of the two partner calls (medians): {added / (added + before):.0%}")


if __name__ == "__main__":
    main()

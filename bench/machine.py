"""What both benchmarks need from the machine: free ports, CPU accounting from /proc, and an
event loop that costs the load generator as little as possible."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    """Each running process's children, by parent pid, from /proc (Linux only)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def cpu_seconds(roots: list[int], *, reaped: bool = False) -> float:
    """user+system CPU of `roots` and all their descendants, from /proc (Linux only); with
    `reaped`, for the roots also their reaped children's (PostgreSQL's backends that have
    exited, e.g. pgbench's)."""
    children = _children()
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            if reaped and pid in roots:
                total += int(fields[13]) + int(fields[14])  # cutime, cstime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot, from /proc/stat."""
    user, nice, system = map(int, Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def run_async(coro):
    try:
        import uvloop  # the load generator is on the same 2 cores: spend as little as we can

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


def stop_process(proc: subprocess.Popen, wait_s: float) -> None:
    """SIGINT (a server's graceful stop: the portal stops its embedded PostgreSQL on it),
    then SIGKILL if it has not exited within `wait_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_rss_mb(root: int) -> list[float]:
    """Resident memory (MB) of each worker of the server process `root`: its spawned children
    (`serve --workers N`), or `root` itself when it serves alone (Linux only)."""
    children = _children()
    workers, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)

    def rss(pid: int) -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    return [rss(pid) for pid in workers or [root]]

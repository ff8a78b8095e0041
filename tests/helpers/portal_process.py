"""Run `python -m portal serve` as a real process, the way an operator does, for tests that
send it signals (SIGTERM, SIGKILL) or put a real proxy in front of it.

The process gets a minimal environment (nothing of the developer's leaks in), runs in its
own directory (so no `.env` is read) and writes its JSON log lines to a file the test reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class PortalProcess:
    process: subprocess.Popen
    url: str
    log_path: Path

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        return lines

    def requests(self) -> list[dict]:
        """The request log: one line per request this instance answered."""
        return [line for line in self.log_lines() if line.get("msg") == "request"]

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait_until_not_listening(self, timeout_s: float = 10.0) -> None:
        """uvicorn closes its listening socket first thing on SIGTERM: this is how a test
        knows the shutdown has begun."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/livez", timeout=1)
            except httpx.TransportError:
                return
            time.sleep(0.02)
        raise TimeoutError("the portal still accepts connections")


FROM_SOURCE = (sys.executable, "-m", "portal")


def _env(extra: dict[str, str], program: tuple[str, ...] = FROM_SOURCE) -> dict[str, str]:
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    # The repository on the path only for the portal run from its source tree: an installed
    # one must find everything in its own virtualenv.
    source = {"PYTHONPATH": str(ROOT)} if program == FROM_SOURCE else {}
    return {**keep, **source, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", **extra}


@contextlib.contextmanager
def portal_process(env: dict[str, str], port: int, workdir: Path, name: str = "portal",
                   startup_timeout_s: float = 30.0, args: tuple[str, ...] = (),
                   program: tuple[str, ...] = FROM_SOURCE, stop: signal.Signals = signal.SIGKILL,
                   ) -> Iterator[PortalProcess]:
    """Start a portal on 127.0.0.1:`port`; yields once /livez answers (uvicorn listens only
    after start-up: database connected, migrations applied); stopped with `stop` at the end
    if still running (SIGTERM lets a portal stop the embedded PostgreSQL it started)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*program, "serve", "--host", "127.0.0.1",
                                    "--port", str(port), *args], env=_env(env, program), cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   # Its own process group, so that the end of the test can
                                   # reach uvicorn's workers too: a supervisor killed by SIGKILL
                                   # leaves them running, listening and using the CPU.
                                   start_new_session=True)
    running = PortalProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_for_livez(running, startup_timeout_s)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(stop)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of its group outlived it


def _wait_for_livez(running: PortalProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"portal exited on start-up:\n{running.log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{running.url}/livez", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"portal did not start:\n{running.log_path.read_text()[-3000:]}")

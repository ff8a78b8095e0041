"""A throwaway Redis for tests: `redis_url` fixture and `running_redis(port)`.

The fixture uses REDIS_URL from the environment when set (CI may provide a service), else
starts its own `redis-server` on a free 127.0.0.1 port with persistence off, and kills it at
the end. Tests never touch a Redis they did not ask for (e.g. one on 6379). Without
`redis-server` installed the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers.servers import free_port


def redis_server_binary() -> str:
    """Path of redis-server, or skip the test (CI installs it: apt-get install redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server) and REDIS_URL is not set")
    return binary


def answers_ping(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(port: int | None = None, *, startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Run a redis-server on 127.0.0.1:`port` (a free one by default); yields its URL."""
    binary = redis_server_binary()
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not answers_ping(port):
            if process.poll() is not None:
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise RuntimeError(f"redis-server on port {port} exited on start:\n{output[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {port} did not answer PING")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with running_redis() as url:
        yield url

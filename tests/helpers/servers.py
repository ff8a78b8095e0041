"""Run an ASGI app under a real uvicorn server on 127.0.0.1 in a background thread.

Used for the fakes of outside services (YClients, WAHA) and for the live portal that
Playwright drives. The server is up when `serve()` returns, and a server that died on
start raises instead of leaving a test to time out against a closed port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread owns signals
        pass


@contextlib.contextmanager
def serve(app, *, port: int | None = None, startup_timeout_s: float = 20.0) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (no trailing slash)."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio"
    )
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"test server on port {port} died during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"test server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

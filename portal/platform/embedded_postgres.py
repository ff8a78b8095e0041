"""An embedded PostgreSQL for machines with no DATABASE_URL: demo runs and the test suite.

It uses `pgserver`, which ships the PostgreSQL binaries in a wheel and copes with running
as root. The server lives in a folder of ours and listens on a Unix socket only.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

# Unix socket paths are limited to ~107 bytes; pgserver puts the socket in the data folder,
# so a deep checkout gets a short stand-in folder under the temp dir instead.
_MAX_SOCKET_DIR = 80


def _short_dir(path: Path) -> Path:
    path = path.resolve()
    if len(str(path)) <= _MAX_SOCKET_DIR:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"portal-pg-{digest}"


class EmbeddedPostgres:
    """Start (or join) the server in `folder`; `stop()` stops it when we started it."""

    def __init__(self, folder: Path):
        self.folder = _short_dir(folder)
        self._server: PostgresServer | None = None

    def start(self) -> str:
        # Imported late: production never needs it. From its defining module, which is
        # where pgserver (typed) exports it explicitly.
        from pgserver.postgres_server import get_server

        self.folder.mkdir(parents=True, exist_ok=True)
        server = self._server = get_server(self.folder, cleanup_mode="stop")
        log.info("embedded PostgreSQL running", extra={"folder": str(self.folder)})
        return server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

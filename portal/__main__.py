"""Command line: `python -m portal serve|migrate` (also installed as `portal`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import sys
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette

from portal.platform.settings import Settings, SettingsError, load_settings

DEMO_STAFF_USER = "demo"


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from portal.app import create_app
    from portal.platform.logs import configure

    configure(settings.log_level, settings.log_format)
    settings, login = with_demo_staff(settings)
    workers = args.workers or (1 if settings.sandbox else os.cpu_count() or 1)
    if workers > 1 and settings.whatsapp_gateway == "simulator":
        # The simulator's sessions live in one process's memory: a second worker would not
        # know the QR the first one showed.
        raise SettingsError("--workers above 1 needs a real gateway (WHATSAPP_GATEWAY=waha), not the simulator")
    if settings.sandbox:
        print(
            f"\n  Demo mode: the sandbox stands in for YClients.\n"
            f"  Open {settings.base_url}/sandbox/ and press Install on a demo salon.\n"
            + (f"  Support dashboard: {settings.base_url}/admin  (user {login[0]}, password {login[1]})\n"
               if login else ""),
            flush=True,
        )
    # access_log off: uvicorn's line includes query strings (signed user data); the
    # portal's own request log replaces it.
    options = {"host": args.host, "port": args.port, "access_log": False,
               "log_level": settings.log_level.lower(), **server_options(settings)}
    if workers == 1:
        app = create_app(settings)
        # Everything imported so far lives as long as the process: keep it out of the full
        # collections that otherwise stall the event loop for tens of ms under load.
        gc.freeze()
        uvicorn.run(app, **options)
        return
    with _shared_database(settings) as dsn:
        # Each worker process builds its own app from the environment (worker_app); what
        # this process decided (the database, the demo staff login) travels there.
        os.environ.update({"DATABASE_URL": dsn} | _staff_environment(settings))
        uvicorn.run("portal.__main__:worker_app", factory=True, workers=workers, **options)


def worker_app() -> Starlette:
    """One worker's app (`serve --workers N`): settings from the environment, as the parent's."""
    from portal.app import create_app
    from portal.platform.logs import configure

    settings = load_settings()
    configure(settings.log_level, settings.log_format)
    app = create_app(settings)
    gc.freeze()
    return app


@contextlib.contextmanager
def _shared_database(settings: Settings) -> Iterator[str]:
    """The DSN all workers share: DATABASE_URL, or one embedded server this process runs."""
    if settings.database_url:
        yield settings.database_url
        return
    from portal.platform.embedded_postgres import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir / "pg")
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def with_demo_staff(settings: Settings) -> tuple[Settings, tuple[str, str] | None]:
    """Demo mode only, and only when no staff login is configured: a demo staff user whose
    random password is kept in PORTAL_DATA_DIR (so it survives restarts) and shown in the
    start-up banner. Production never gets one."""
    if not settings.sandbox or settings.admin_username or settings.admin_password_hash:
        return settings, None
    from portal.support.staff import hash_password

    path = settings.data_dir / "demo-staff.json"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    if not isinstance(stored.get("password"), str):
        stored = {"username": DEMO_STAFF_USER, "password": secrets.token_urlsafe(12)}
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    username, password = DEMO_STAFF_USER, stored["password"]
    return settings.replace(admin_username=username, admin_password_hash=hash_password(password)), (username, password)


def _staff_environment(settings: Settings) -> dict[str, str]:
    if settings.admin_username and settings.admin_password_hash:
        return {"ADMIN_USERNAME": settings.admin_username, "ADMIN_PASSWORD_HASH": settings.admin_password_hash}
    return {}


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options from the settings: whose forwarded headers to believe, and timeouts.

    uvicorn has no timeout for reading headers or a body; nginx owns those in production
    (docs/deploy.md, "Timeouts"), and the portal bounds a body itself (BODY_READ_TIMEOUT_S).
    """
    trusted = settings.forwarded_allow_ips
    return {
        # Off unless a proxy is named: then X-Forwarded-For/-Proto from anyone else are ignored.
        "proxy_headers": trusted is not None,
        "forwarded_allow_ips": trusted or "",
        "timeout_keep_alive": settings.keepalive_timeout_s,
        # On SIGTERM: stop accepting, let requests in flight (an activation waiting on the
        # partner) finish for this long, then cancel them.
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        # An idle server says nothing about itself.
        "server_header": False,
    }


async def _migrate(settings: Settings) -> None:
    from portal.platform.database import open_database

    # open_database applies pending migrations under the migrations lock.
    async with open_database(settings):
        pass


def _hash_password() -> int:
    import getpass

    from portal.support.staff import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 10:
        print("portal: use at least 10 characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes (default: 1 in demo mode, the CPU count in production)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("hash-password", help="make ADMIN_PASSWORD_HASH from a password (asked, or read from stdin)")
    args = parser.parse_args(argv)
    if args.command == "hash-password":
        return _hash_password()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"portal: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        try:
            _serve(args, settings)
        except SettingsError as exc:
            print(f"portal: configuration error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("migrations applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())

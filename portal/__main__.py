"""Command line: `python -m portal serve|migrate` (also installed as `portal`)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from typing import Any

from portal.platform.settings import Settings, SettingsError, load_settings


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from portal.app import create_app
    from portal.platform.logs import configure

    configure(settings.log_level, settings.log_format)
    if settings.sandbox:
        print(
            f"\n  Demo mode: the sandbox stands in for YClients.\n"
            f"  Open {settings.base_url}/sandbox/ and press Install on a demo salon.\n",
            flush=True,
        )
    # access_log off: uvicorn's line includes query strings (signed user data); the
    # portal's own request log replaces it.
    app = create_app(settings)
    # Everything imported so far lives as long as the process: keep it out of the full
    # collections that otherwise stall the event loop for tens of ms under load.
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, access_log=False,
                log_level=settings.log_level.lower(), **server_options(settings))


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
        _serve(args, settings)
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("migrations applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs the API: `python -m app [--host H] [--port P] [--workers N]`.

Settings and every dependency are checked first, so a bad configuration stops start-up with one
clear line instead of a traceback. Uvicorn's own lines (the access log included, unless
`ACCESS_LOG=false`) go through the app's log format: JSON in production, with the request id."""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn
from fastapi import FastAPI

from app.config import describe_config_error, get_settings
from app.documents import DOCUMENTS
from app.main import create_app
from app.observability import configure_logging
from app.runtime.http import BoundedHeadersProtocol
from app.runtime.resources import Resources, StartupError


def app_from_environment() -> FastAPI:
    """The app on the settings read from the environment: the factory uvicorn calls in each
    server process (an import string, so `--workers N` can start several)."""
    return create_app(get_settings())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:
        print(f"api: configuration error: {describe_config_error(exc)}", file=sys.stderr)
        return 2

    configure_logging(settings)

    async def probe() -> None:
        resources = await Resources.open(settings, documents=DOCUMENTS)
        await resources.close()

    try:
        asyncio.run(probe())
    except StartupError as exc:
        print(f"api: cannot start: {exc}", file=sys.stderr)
        return 1

    uvicorn.run(
        "app.__main__:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # The client address behind TRUSTED_PROXIES is worked out (and checked to be an IP
        # address) by the app itself, in AuditMiddleware; uvicorn's rewrite would believe any text.
        proxy_headers=False,
        http=BoundedHeadersProtocol,  # request line + headers capped: 431 past the limit
        log_level=settings.log_level.lower(),
        log_config=None,  # configure_logging routes uvicorn's loggers through our formatter
        access_log=settings.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

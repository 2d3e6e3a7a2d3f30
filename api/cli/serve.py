"""`peerbridge serve`: resolve the database, migrate, optionally load the demo, run uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from api.cli.common import (
    CliError,
    database,
    database_url,
    load_settings,
)
from api.cli.migrate import migrate_and_grant
from api.db.pool import create_pool
from api.logs import configure_logging
from api.settings import Settings

_DEMO_MODULE = "api.cli.demo"
# In-flight requests (and open subscriptions) get this long after SIGTERM before we close them.
_GRACEFUL_SHUTDOWN_S = 10

_log = logging.getLogger("peerbridge.serve")

DemoLoader = Callable[[Any, Settings], Any]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API (GraphQL, FHIR, OAuth)",
        description="Run the API. Applies pending migrations first. Without DATABASE_URL it "
        "starts an embedded PostgreSQL under PEERBRIDGE_DATA_DIR and stops it on exit.",
    )
    parser.add_argument("--host", help="address to listen on (default: PEERBRIDGE_HOST)")
    parser.add_argument(
        "--port", type=int, help="port to listen on (default: PEERBRIDGE_PORT)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="load the demo network (idempotent) before serving"
    )
    parser.set_defaults(handler=run)


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so the embedded database is stopped on the way out."""


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    overrides = {"host": args.host, "port": args.port}
    settings = load_settings(**{key: value for key, value in overrides.items() if value})
    configure_logging(settings)
    _refuse_unsafe_production(settings)
    load_demo = _demo_loader() if args.demo else None
    source = "DATABASE_URL" if settings.database_url else f"embedded, {settings.data_dir / 'pg'}"
    try:
        with _sigterm_raises(), database(settings, while_starting=_import_app) as settings:
            asyncio.run(_serve(settings, load_demo, _Startup(started, source)))
    except (KeyboardInterrupt, _Terminated):
        _log.info("stopped")
    return 0


def _refuse_unsafe_production(settings: Settings) -> None:
    if settings.is_production and not settings.public_base_url:
        raise CliError(
            "PEERBRIDGE_PUBLIC_BASE_URL is required when PEERBRIDGE_ENVIRONMENT=production "
            "(token issuer and FHIR links are built from it)"
        )


def _demo_loader() -> DemoLoader:
    # The demo module is optional so the server still builds without it.
    if importlib.util.find_spec(_DEMO_MODULE) is None:
        raise CliError("--demo is not available: this build has no demo data (api/cli/demo.py)")
    loader: DemoLoader = importlib.import_module(_DEMO_MODULE).load_demo
    return loader


def _import_app() -> None:
    # The heaviest import (GraphQL schema, FHIR models): done while the database starts.
    importlib.import_module("api.app")


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass(frozen=True)
class _Startup:
    began: float  # time.monotonic() when the command started
    database: str  # where the data lives, for the ready line


async def _serve(settings: Settings, load_demo: DemoLoader | None, startup: _Startup) -> None:
    # With nothing pending this only reads schema_migrations, so the service role will do.
    applied, _ = await migrate_and_grant(
        settings.migration_database_url or database_url(settings),
        settings.service_role,
        only_after_changes=True,
    )
    _log.info("migrations: %s", ", ".join(applied) if applied else "none pending")
    if load_demo is not None:
        await _load_demo(load_demo, settings)

    from api.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,  # keep our logging setup
            access_log=False,  # uvicorn's access log prints query strings; ours does not
            server_header=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        )
    )
    announcer = asyncio.create_task(_announce_ready(server, settings, startup))
    try:
        await server.serve()
    finally:
        announcer.cancel()
    if not server.started:
        raise CliError("the server did not start (see the log above)")


async def _load_demo(load_demo: DemoLoader, settings: Settings) -> None:
    pool = await create_pool(settings)
    try:
        result = load_demo(pool, settings)
        if inspect.isawaitable(result):
            await result
    finally:
        await pool.close()


async def _announce_ready(server: uvicorn.Server, settings: Settings, startup: _Startup) -> None:
    while not server.started:
        await asyncio.sleep(0.01)
    _log.info(
        "PeerBridge ready at %s in %.2f s (database: %s)",
        settings.base_url,
        time.monotonic() - startup.began,
        startup.database,
    )

"""`peerbridge serve`: resolve the database, migrate, optionally load the demo, run uvicorn.

With `--workers N` (N > 1) this process is the supervisor: it starts the embedded database
if there is no DATABASE_URL, migrates and loads the demo once, binds the socket, and runs N
uvicorn worker processes that share it (uvicorn's `Multiprocess`: a worker that dies is
replaced; SIGTERM or Ctrl-C stops them all, each finishing its requests). Workers connect to
the database the supervisor resolved. What must happen once per deployment is safe with N
workers: audit checkpoints take an advisory lock per round and the partition upkeep is
serialised in the database (api/auth/audit_schedule.py), the outbox pruning deletes what no
other worker deleted (api/events/schedule.py), and delivery workers lease their rows `FOR
UPDATE SKIP LOCKED` under a fan-out advisory lock (api/db/deliveries.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import inspect
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors.multiprocess import Multiprocess

from api.cli.common import (
    CliError,
    Terminated,
    database,
    database_url,
    load_settings,
    sigterm_raises,
)
from api.cli.migrate import migrate_and_grant
from api.db.pool import create_pool
from api.logs import configure_logging
from api.settings import Settings

_DEMO_MODULE = "api.cli.demo"
# In-flight requests (and open subscriptions) get this long after SIGTERM before we close them.
_GRACEFUL_SHUTDOWN_S = 10

# prometheus_client's multiprocess mode: where each worker writes its metric files.
METRICS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

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
    parser.add_argument("--port", type=int, help="port to listen on (default: PEERBRIDGE_PORT)")
    parser.add_argument(
        "--workers",
        type=_worker_count,
        help="worker processes (default: PEERBRIDGE_WORKERS, else the CPU count in production "
        "and 1 in development)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="load the demo network (idempotent) before serving"
    )
    parser.set_defaults(handler=run)


def _settle_heap() -> None:
    """What the process has loaded by now (modules, the GraphQL schema, the FHIR models) lives
    as long as it does: frozen out of the collector's generations, it is no longer rescanned by
    every full collection that a request's allocations set off (a quarter of the CPU of a FHIR
    search page; `python -m benchmarks profile`)."""
    gc.collect()
    gc.freeze()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on every platform (Windows): the standard loop serves too
        return None
    return uvloop.new_event_loop


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    if not 1 <= count <= 256:
        raise argparse.ArgumentTypeError("workers must be between 1 and 256")
    return count


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    overrides = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = load_settings(**{key: value for key, value in overrides.items() if value})
    configure_logging(settings)
    _refuse_unsafe_production(settings)
    load_demo = _demo_loader() if args.demo else None
    source = "DATABASE_URL" if settings.database_url else f"embedded, {settings.data_dir / 'pg'}"
    startup = _Startup(started, source)
    try:
        with sigterm_raises(), database(settings, while_starting=_import_app) as settings:
            if settings.worker_count == 1:
                # The loop uvicorn itself would pick ("auto"): uvloop where it is installed.
                with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                    runner.run(_serve(settings, load_demo, startup))
            else:
                asyncio.run(_prepare(settings, load_demo))
                _supervise(settings, startup)
    except (KeyboardInterrupt, Terminated):
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


@dataclass(frozen=True)
class _Startup:
    began: float  # time.monotonic() when the command started
    database: str  # where the data lives, for the ready line


async def _prepare(settings: Settings, load_demo: DemoLoader | None) -> None:
    """What happens once before serving, however many workers: migrations, the demo data."""
    # With nothing pending this only reads schema_migrations, so the service role will do.
    applied, _ = await migrate_and_grant(
        settings.migration_database_url or database_url(settings),
        settings.service_role,
        only_after_changes=True,
    )
    _log.info("migrations: %s", ", ".join(applied) if applied else "none pending")
    if load_demo is not None:
        await _load_demo(load_demo, settings)


async def _serve(settings: Settings, load_demo: DemoLoader | None, startup: _Startup) -> None:
    await _prepare(settings, load_demo)

    from api.app import create_app

    app = create_app(settings)
    _settle_heap()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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


# The environment a worker process reads its settings from: what the supervisor resolved or
# was told on its command line, on top of the inherited environment.
def _worker_environment(settings: Settings) -> dict[str, str]:
    assert settings.database_url, "the supervisor resolves the database first"
    return {
        "DATABASE_URL": settings.database_url,
        "PEERBRIDGE_HOST": settings.host,
        "PEERBRIDGE_PORT": str(settings.port),
        "PEERBRIDGE_WORKERS": str(settings.worker_count),
    }


def worker_app() -> Starlette:
    """`uvicorn --factory` target of each worker process: the app, from the environment."""
    settings = load_settings()
    configure_logging(settings)
    from api.app import create_app

    app = create_app(settings)
    _settle_heap()
    return app


def _supervise(settings: Settings, startup: _Startup) -> None:
    """Run `settings.worker_count` uvicorn workers on one socket until SIGTERM or Ctrl-C."""
    os.environ.update(_worker_environment(settings))
    with _metrics_directory():
        config = uvicorn.Config(
            f"{__name__}:worker_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.worker_count,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        )
        sock = config.bind_socket()
        supervisor = Multiprocess(config, sockets=[sock])
        announcer = threading.Thread(
            target=_announce_workers_ready, args=(settings, startup), daemon=True
        )
        announcer.start()
        try:
            supervisor.run()
        finally:
            sock.close()


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """Workers share their metrics through PROMETHEUS_MULTIPROC_DIR (prometheus_client's
    multiprocess mode): a fresh private directory unless one is configured, removed after."""
    if os.environ.get(METRICS_DIRECTORY_VARIABLE):
        yield
        return
    directory = tempfile.mkdtemp(prefix="peerbridge-metrics-")
    os.environ[METRICS_DIRECTORY_VARIABLE] = directory
    try:
        yield
    finally:
        del os.environ[METRICS_DIRECTORY_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


def _announce_workers_ready(settings: Settings, startup: _Startup) -> None:
    probe = f"http://{_loopback(settings.host)}:{settings.port}/healthz"
    while True:
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:  # noqa: S310 (our URL)
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    _log.info(
        "PeerBridge ready at %s with %d workers in %.2f s (database: %s)",
        settings.base_url,
        settings.worker_count,
        time.monotonic() - startup.began,
        startup.database,
    )


def _loopback(host: str) -> str:
    # A wildcard address is reached on loopback.
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)

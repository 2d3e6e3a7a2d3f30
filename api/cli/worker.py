"""`peerbridge worker`: deliver subscription notifications (and keep house: see
`api.housekeeping`) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

from api import housekeeping
from api.auth import kek
from api.cli.common import (
    CONNECTION_ERRORS,
    CliError,
    Terminated,
    connection_failed,
    database,
    load_settings,
    sigterm_raises,
)
from api.db.migrate import pending
from api.db.pool import connect, create_pool
from api.delivery.runtime import WORKER_APPLICATION_NAME
from api.delivery.worker import DeliveryWorker
from api.events import schedule as events_schedule
from api.logs import configure_logging
from api.settings import Settings

_log = logging.getLogger("peerbridge.worker")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="deliver subscription notifications (outbox → endpoints)",
        description="Run a delivery worker until Ctrl-C or SIGTERM. Any number may run, on "
        "any number of machines, against one database: they share the queue. `serve` runs "
        "one too unless PEERBRIDGE_DELIVERY_WORKER_IN_SERVE=false.",
    )
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)
    if settings.is_production and not settings.key_encryption_key:
        raise CliError("production requires PEERBRIDGE_KEY_ENCRYPTION_KEY")
    try:
        # The key `serve` seals subscription secrets with (the same data directory or variable).
        secrets_key = kek.load(settings.key_encryption_key, settings.data_dir)
    except kek.KeyEncryptionError as error:
        raise CliError(str(error)) from None
    try:
        with sigterm_raises(), database(settings) as settings:
            asyncio.run(_run_worker(settings, secrets_key))
    except (KeyboardInterrupt, Terminated):
        _log.info("stopped")
    return 0


async def _run_worker(settings: Settings, secrets_key: kek.KeyEncryptionKey) -> None:
    try:
        pool = await create_pool(settings)
    except CONNECTION_ERRORS as error:
        raise connection_failed(error) from None
    try:
        async with pool.acquire() as conn:
            if await pending(conn):
                raise CliError("the database schema is not current: run `peerbridge migrate`")
        _log.info("delivery worker started")
        worker = DeliveryWorker(
            pool,
            settings,
            secrets_key,
            lambda: connect(settings, application_name=WORKER_APPLICATION_NAME),
        )
        async with asyncio.TaskGroup() as tasks:  # one failing stops the other
            tasks.create_task(worker.run())
            if settings.housekeeping_interval_s > 0:
                tasks.create_task(housekeeping.housekeeping(pool, settings).run())
            if settings.events_schedule_interval_s > 0:
                tasks.create_task(events_schedule.schedule(pool, settings).run())
    finally:
        await pool.close()

"""What every command shares: user-facing errors, settings, the database (URL or embedded)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from api.db.embedded import EmbeddedPostgres
from api.db.migrate import pending
from api.db.organizations import PostgresOrganizationRepository
from api.db.pool import create_pool
from api.settings import Settings

T = TypeVar("T")


class CliError(Exception):
    """A problem the user can fix; main() prints it without a traceback and exits 1."""


class Terminated(BaseException):
    """SIGTERM, turned into an exception so the embedded database is stopped on the way out."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Terminated` (long-running commands stop cleanly)."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line overrides on top."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = [
            f"  {_env_name(problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        ]
        raise CliError("invalid configuration:\n" + "\n".join(problems)) from None


def _env_name(location: tuple[int | str, ...]) -> str:
    if not location:
        return "settings"
    field = str(location[0])
    return "DATABASE_URL" if field.lower() == "database_url" else f"PEERBRIDGE_{field.upper()}"


@contextmanager
def database(
    settings: Settings, *, while_starting: Callable[[], object] | None = None
) -> Iterator[Settings]:
    """`settings` with a usable database URL: DATABASE_URL, else the embedded server.

    The embedded server is started here and released on exit (it stops when no other
    PeerBridge process still uses it). `while_starting` runs meanwhile (serve imports the app),
    since a first start spends a second or more in initdb.
    """
    if settings.database_url:
        if while_starting is not None:
            while_starting()
        yield settings
        return
    if settings.is_production:
        raise CliError(
            "DATABASE_URL is required when PEERBRIDGE_ENVIRONMENT=production "
            "(the embedded PostgreSQL is for development)"
        )
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        uri = _start_embedded(embedded, while_starting)
        yield settings.model_copy(update={"database_url": uri})
    finally:
        embedded.stop()


def _start_embedded(
    embedded: EmbeddedPostgres, while_starting: Callable[[], object] | None
) -> str:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-postgres") as executor:
        starting = executor.submit(embedded.start)
        try:
            if while_starting is not None:
                while_starting()
        finally:
            failure = starting.exception()  # waits, so the caller can always stop the server
    if isinstance(failure, OSError | subprocess.SubprocessError):
        raise CliError(
            f"could not start the embedded PostgreSQL in {embedded.pgdata} "
            f"({type(failure).__name__}); its log is {embedded.pgdata / 'log'}"
        )
    return starting.result()


def database_url(settings: Settings) -> str:
    """The URL `database()` resolved."""
    if not settings.database_url:
        raise CliError("no database URL: set DATABASE_URL")
    return settings.database_url


# Connection failures a user fixes by correcting DATABASE_URL or starting PostgreSQL.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def connection_failed(error: BaseException) -> CliError:
    # The class name only: asyncpg messages can echo the user name or host of the URL.
    return CliError(
        f"cannot connect to the database ({type(error).__name__}): "
        "check DATABASE_URL and that PostgreSQL is running"
    )


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a database whose schema is current (else a CliError saying what to run)."""
    try:
        pool = await create_pool(
            settings.model_copy(update={"db_pool_min_size": 1, "db_pool_max_size": 2})
        )
    except CONNECTION_ERRORS as error:
        raise connection_failed(error) from None
    try:
        async with pool.acquire() as conn:
            not_applied = await pending(conn)
        if not_applied:
            raise CliError(
                f"the database schema is not current ({len(not_applied)} migration(s) pending): "
                "run `peerbridge migrate` first"
            )
        yield pool
    finally:
        await pool.close()


def run_with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run `work(pool)` on the configured database (started if embedded), then clean up."""
    with database(load_settings()) as settings:

        async def _run() -> T:
            async with open_pool(settings) as pool:
                return await work(pool)

        return asyncio.run(_run())


async def find_organization_id(pool: asyncpg.Pool, text: str) -> UUID:
    """An organization given by id or by name (`--org`)."""
    try:
        return UUID(text)
    except ValueError:
        pass
    async with pool.acquire() as conn:
        organization = await PostgresOrganizationRepository(conn).find_by_name(text)
    if organization is None:
        raise CliError(f"no organization named {text!r}: see `peerbridge orgs list`")
    return organization.id

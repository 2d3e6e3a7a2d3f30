"""`peerbridge serve --workers N`: N processes answer on one port, and SIGTERM stops them all.

Which process answered is read from the operating system (the owner of each accepted
connection, from /proc), not from anything the server would tell a client."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_support import free_port, wait_ready

from api.settings import Settings

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found |= {int(child) for child in children}
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _accepted_on(port: int) -> set[str]:
    """Inodes of established connections whose local end is `port` (the server side)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == port:
            inodes.add(inode)
    return inodes


def _serving_pids(serve_pid: int, port: int) -> set[int]:
    """The serve process's children that hold an accepted connection on `port`."""
    accepted = _accepted_on(port)
    return {child for child in _children(serve_pid) if _socket_inodes(child) & accepted}


async def _answered_by(serve: subprocess.Popen[bytes], port: int) -> set[int]:
    """Open connections until two workers hold some, each answering /healthz; their pids."""
    clients = []
    try:
        for _ in range(40):
            client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
            clients.append(client)
            response = await client.get("/healthz")
            assert response.status_code == 200
            serving = _serving_pids(serve.pid, port)
            if len(serving) >= 2:
                return serving
            await asyncio.sleep(0.05)
        return _serving_pids(serve.pid, port)
    finally:
        for client in clients:
            await client.aclose()


async def test_two_workers_answer_on_one_port_and_stop_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PEERBRIDGE_DATA_DIR": str(tmp_path),
        "PEERBRIDGE_LOG_LEVEL": "info",
    }
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, serve, time.monotonic() + 120)
        workers = _children(serve.pid)
        answering = await _answered_by(serve, port)
        assert len(answering) == 2, f"connections went to {answering} of workers {workers}"
        assert serve.pid not in answering
    finally:
        serve.send_signal(signal.SIGTERM)
        log = serve.communicate(timeout=60)[1].decode()
    assert serve.returncode == 0, log
    assert "with 2 workers" in log
    assert "migrations:" in log and log.count("migrations:") == 1, "migrated once, by the parent"
    for pid in answering:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} still running after SIGTERM"


def test_worker_count_defaults_to_the_cpus_in_production_and_one_in_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PEERBRIDGE_WORKERS", raising=False)
    assert Settings(environment="development").worker_count == 1
    cpus = len(os.sched_getaffinity(0))
    assert Settings(environment="production").worker_count == cpus
    assert Settings(environment="production", workers=3).worker_count == 3

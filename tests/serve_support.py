"""Running `peerbridge serve` in a subprocess from tests: a free port, waiting until ready."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_ready(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Until /readyz answers 200; fails with serve's log if it exits first or time runs out."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                _, err = process.communicate(timeout=5)
                raise AssertionError(f"serve exited before it was ready:\n{err.decode()[-3000:]}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"serve on port {port} was not ready in time")

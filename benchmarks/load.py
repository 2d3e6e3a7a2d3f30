"""Load from `wrk` in its own process: fixed connections over loopback, a warm-up, then a timed
run; per-request bearer tokens and bodies come from files the Lua script rotates through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("requests.lua")
_RESULT_MARK = "BENCH_RESULT "


class LoadGeneratorMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Request:
    path: str
    body: str = ""  # non-empty: POSTed as application/json

    def line(self) -> str:
        if "\t" in self.path or "\n" in self.path + self.body:
            raise ValueError("paths and bodies go one per line, tab-separated")
        return f"{self.path}\t{self.body}"


@dataclass(frozen=True)
class Measured:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # connection errors, timeouts and non-2xx/3xx answers
    # The server's own CPU time (user + system, its worker processes included) per request:
    # moved less than req/s by whatever else the machine runs. None where not measurable.
    cpu_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    """`wrk` on PATH, installed with apt-get when missing and allowed (root on Debian)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise LoadGeneratorMissing(
        "the load generator wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), "
        "`brew install wrk` (macOS), or build it from https://github.com/wg/wrk"
    )


def run(
    base_url: str,
    requests: list[Request],
    tokens: list[str],
    *,
    seconds: float,
    warmup: float,
    connections: int,
    threads: int = 2,
    server_pid: int | None = None,
) -> Measured:
    """Warm up, then measure: `connections` keep-alive connections for `seconds` (and the CPU
    time of the process `server_pid` meanwhile)."""
    binary = wrk_binary()
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as scratch:
        requests_file = Path(scratch, "requests.tsv")
        requests_file.write_text("".join(r.line() + "\n" for r in requests))
        tokens_file = Path(scratch, "tokens.txt")
        tokens_file.write_text("".join(t + "\n" for t in tokens))
        env = {"BENCH_REQUESTS": str(requests_file), "BENCH_TOKENS": str(tokens_file)}
        if warmup > 0:
            _wrk(binary, base_url, warmup, connections, threads, env)
        before = cpu_seconds(server_pid)
        measured = _wrk(binary, base_url, seconds, connections, threads, env)
        after = cpu_seconds(server_pid)
        if before is None or after is None or not measured.requests:
            return measured
        return replace(measured, cpu_ms=1000 * (after - before) / measured.requests)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of `pid` and its live descendants (Linux /proc); else None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    # After the command name: field 14/15 of stat(5) are utime/stime, here at index 11/12.
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in children:
        total += cpu_seconds(int(child)) or 0.0
    return total


def _wrk(
    binary: str, base_url: str, seconds: float, connections: int, threads: int, env: dict[str, str]
) -> Measured:
    command = [
        binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(LUA_SCRIPT), base_url,
    ]  # fmt: skip
    finished = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    for line in finished.stdout.splitlines():
        if line.startswith(_RESULT_MARK):
            found = json.loads(line[len(_RESULT_MARK) :])
            return Measured(
                requests=int(found["requests"]),
                seconds=found["duration_us"] / 1e6,
                p50_ms=found["p50_us"] / 1000,
                p99_ms=found["p99_us"] / 1000,
                errors=int(found["errors"]),
            )
    raise RuntimeError(f"wrk gave no result (exit {finished.returncode}): {finished.stderr[-500:]}")

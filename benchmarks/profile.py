"""`python -m benchmarks profile`: where one endpoint's server time goes, under the same load.

Starts `peerbridge serve` on the benchmark dataset, drives one endpoint with wrk as `run` does,
and records the server with py-spy meanwhile (sampling, from outside the process: nothing in
the server changes). Writes the collapsed stacks (`<out>/<name>.txt`, the input of any flame
graph tool) and prints the functions with the most samples, by self and by inclusive time.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from benchmarks import harness, load
from benchmarks.dataset import ensure

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _where(frame: str) -> str:
    """`function (path/to/file.py:12)` -> `function (file.py)`: lines merged per function."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/api/", "/benchmarks/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1] if marker.endswith("/") else path
            break
    return f"{match['function']} ({path})"


def summarize(collapsed: str, top: int = 25) -> str:
    """Self and inclusive shares per function from py-spy's raw (collapsed) output."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_where(f) for f in stack.split(";")[1:]]  # the first is the thread
        if not frames:
            continue
        total += count
        self_samples[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples (is py-spy allowed to attach? it needs root or ptrace rights)"

    def table(title: str, counts: Counter[str]) -> list[str]:
        lines = [f"{title} ({total} samples)"]
        lines += [f"{100 * n / total:6.1f} %  {frame}" for frame, n in counts.most_common(top)]
        return lines

    return "\n".join(table("self", self_samples) + [""] + table("inclusive", inclusive))


def profile(endpoint_label: str, referrals: int, seconds: float, out: Path) -> str:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    admin_url, embedded = harness._admin_url()
    try:
        dataset = asyncio.run(ensure(admin_url, referrals, 1))
        scratch = Path(tempfile.mkdtemp(prefix="pb-profile-"))
        pids: list[int] = []
        with harness.peerbridge(dataset, scratch, 1, pids=pids) as base:
            client_id, secret = asyncio.run(harness.register_client(dataset))
            tokens = harness.Tokens(base, client_id, secret)
            timed, _ = harness.endpoints(
                base, tokens.take(1)[0], str(dataset.caller_organization_id)
            )
            chosen = [e for e in timed if endpoint_label.lower() in e.label.lower()]
            if not chosen:
                raise SystemExit(f"no endpoint matches {endpoint_label!r}: "
                                 + ", ".join(e.label for e in timed))  # fmt: skip
            endpoint = chosen[0]
            measured: list[load.Measured] = []
            taken = tokens.take()  # before sampling: issuing tokens is deliberately slow
            driver = threading.Thread(
                target=lambda: measured.append(
                    load.run(base, endpoint.requests, taken, seconds=seconds + 2, warmup=2,
                             connections=16, server_pid=pids[0])  # fmt: skip
                )
            )
            driver.start()
            out.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^a-z0-9]+", "-", endpoint.label.lower()).strip("-")
            stacks = out / f"{name}.txt"
            subprocess.run(
                [py_spy, "record", "--pid", str(pids[0]), "--duration", str(int(seconds)),
                 "--rate", "250", "--format", "raw", "--nonblocking", "--output", str(stacks)],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            driver.join()
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if embedded is not None:
            embedded.stop()
    rate = "no load result"
    if measured:
        cpu = measured[0].cpu_ms
        rate = f"{measured[0].rate:.0f} req/s under the profiler" + (
            f", server CPU {cpu:.2f} ms per request" if cpu is not None else ""
        )
    return f"{endpoint.label}: {rate}; stacks in {stacks}\n\n" + summarize(stacks.read_text())

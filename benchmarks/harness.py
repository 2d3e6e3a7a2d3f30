"""`python -m benchmarks run`: PeerBridge against its floor, same data, same run.

1. Builds (or reuses) the dataset of `--referrals` referrals (benchmarks/dataset.py).
2. Starts `peerbridge serve` (one worker; more for the scaling rows) and the floor app
   (benchmarks/floor.py, one uvicorn worker) side by side on loopback.
3. Registers an OAuth client for the caller (peer organization 0) and, before each run, takes
   fresh access tokens from /oauth/token as any client does (they live 300 s).
4. Checks every endpoint answers correctly (200, 50 entries, the expected ids) before timing
   it, so a broken endpoint cannot look fast; then drives it with wrk (benchmarks/load.py).
5. Prints the table: endpoint | req/s | p50 / p99 ms | floor req/s | ratio; the `--workers`
   scaling rows; and p99 at `--compare-size` referrals next to p99 at `--referrals`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.auth.clients import create_client
from api.db.pool import create_pool
from api.settings import Settings
from benchmarks import load
from benchmarks.dataset import Dataset, ensure
from benchmarks.floor import PAGE

ROOT = Path(__file__).resolve().parents[1]
SCOPES = "system/*.cruds"
TOKENS_PER_RUN = 16
_log = logging.getLogger("benchmarks")
_SERVER_PIDS: dict[str, int] = {}  # base URL -> the process serving it, for its CPU time

INBOX_QUERY = (
    "query Inbox { referrals(first: 50, filter: {box: INBOX}) { edges { node { id status "
    "priority patient { givenName familyName } program { name } } } } }"
)
REFERRAL_QUERY = (
    "query Referral($id: ID!) { referral(id: $id) { id status priority "
    "patient { givenName familyName } program { name } } }"
)
# A referral whose consent does not cover it answers redacted: its patient is null with one
# of these codes, which is the correct answer and not a failure.
_CONSENT_CODES = {"CONSENT_REQUIRED", "CONSENT_REVOKED"}


class Broken(RuntimeError):
    """An endpoint answered wrongly: nothing is timed."""


@dataclass
class Row:
    label: str
    measured: load.Measured
    floor: load.Measured | None = None


@dataclass
class Report:
    referrals: int
    workers: list[int]
    rows: list[Row] = field(default_factory=list)
    scaling: list[tuple[str, int, load.Measured]] = field(default_factory=list)
    sizes: list[tuple[str, load.Measured, load.Measured]] = field(default_factory=list)
    compare_size: int | None = None


@dataclass(frozen=True)
class Endpoint:
    label: str
    requests: list[load.Request]
    floor: str  # which floor endpoint answers the same question: "inbox" or "read"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_kek() -> str:
    # Fixed, so a cached dataset's sealed signing keys open again on the next run.
    return base64.urlsafe_b64encode(hashlib.sha256(b"peerbridge-bench").digest()).decode()


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, log: Path, seconds: float = 120) -> None:
    """Until `url` answers 200 (the floor's /floor/healthz, PeerBridge's /readyz)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise Broken(f"{url} did not become ready; see {log}")


@contextmanager
def peerbridge(
    dataset: Dataset, scratch: Path, workers: int, *, pids: list[int] | None = None
) -> Iterator[str]:
    """`peerbridge serve` on the dataset: its base URL (its pid appended to `pids`)."""
    port = _free_port()
    log = scratch / f"peerbridge-{workers}.log"
    command = [str(Path(sys.executable).with_name("peerbridge")), "serve", "--port", str(port)]
    if workers != 1:
        command += ["--workers", str(workers)]
    env = {
        "DATABASE_URL": dataset.url,
        "PEERBRIDGE_DATA_DIR": str(scratch / "data"),
        "PEERBRIDGE_KEY_ENCRYPTION_KEY": bench_kek(),
        "PEERBRIDGE_HOST": "127.0.0.1",
        "PEERBRIDGE_LOG_LEVEL": "warning",
    }
    with _process(command, env, log) as process:
        if pids is not None:
            pids.append(process.pid)
        base = f"http://127.0.0.1:{port}"
        _SERVER_PIDS[base] = process.pid
        _wait_ready(f"{base}/readyz", log)
        yield base


@contextmanager
def floor(dataset: Dataset, scratch: Path, peerbridge_url: str) -> Iterator[str]:
    """The floor app (one uvicorn worker) on the dataset: its base URL."""
    port = _free_port()
    log = scratch / "floor.log"
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks.floor:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {
        "BENCH_FLOOR_DATABASE_URL": dataset.url,
        "BENCH_FLOOR_JWKS_URL": f"{peerbridge_url}/.well-known/jwks.json",
        "BENCH_FLOOR_ISSUER": peerbridge_url,
    }
    with _process(command, env, log) as process:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/floor/healthz", log)
        _SERVER_PIDS[base] = process.pid
        yield base


class Tokens:
    """Access tokens for the caller's OAuth client, taken from /oauth/token as clients do."""

    def __init__(self, base_url: str, client_id: str, secret: str) -> None:
        self._base_url = base_url
        self._auth = (client_id, secret)

    def take(self, count: int = TOKENS_PER_RUN) -> list[str]:
        with httpx.Client(base_url=self._base_url, timeout=30) as http:
            tokens = []
            for _ in range(count):
                tokens.append(self._one(http))
            return tokens

    def _one(self, http: httpx.Client) -> str:
        # Right after a timed row the server may still be draining what wrk left queued: a
        # busy answer (503) is retried for a while, anything else is a failure.
        for _ in range(30):
            response = http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": SCOPES},
                auth=self._auth,
            )
            if response.status_code != 503:
                break
            time.sleep(1)
        if response.status_code != 200:
            raise Broken(f"/oauth/token answered {response.status_code}")
        return str(response.json()["access_token"])


async def register_client(dataset: Dataset) -> tuple[str, str]:
    pool = await create_pool(Settings(database_url=dataset.url, db_pool_max_size=2))
    try:
        made = await create_client(
            pool,
            organization_id=dataset.caller_organization_id,
            name=f"Benchmark {int(time.time())}",
            scopes=SCOPES.split(),
        )
    finally:
        await pool.close()
    assert made.secret is not None
    return made.client.client_id, made.secret


def _get(base: str, token: str, request: load.Request) -> Any:
    headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
    if request.body:
        response = httpx.post(
            base + request.path,
            content=request.body,
            headers={**headers, "content-type": "application/json"},
            timeout=30,
        )
    else:
        response = httpx.get(base + request.path, headers=headers, timeout=30)
    if response.status_code != 200:
        raise Broken(f"{request.path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def _graphql_data(answer: Any, what: str) -> Any:
    for error in answer.get("errors") or ():
        code = (error.get("extensions") or {}).get("code")
        if code not in _CONSENT_CODES or error.get("path", [""])[-1] != "patient":
            raise Broken(f"{what}: unexpected error {code}")
    return answer["data"]


def endpoints(base: str, token: str, caller: str) -> tuple[list[Endpoint], list[str]]:
    """The five timed endpoints, each checked once first; and the inbox's referral ids."""
    inbox = load.Request("/graphql", json.dumps({"query": INBOX_QUERY}))
    edges = _graphql_data(_get(base, token, inbox), "GraphQL inbox")["referrals"]["edges"]
    if len(edges) != PAGE:
        raise Broken(f"GraphQL inbox: {len(edges)} referrals, expected {PAGE}")
    shown = [edge["node"]["id"] for edge in edges if edge["node"]["patient"] is not None]
    if not shown:
        raise Broken("GraphQL inbox: every patient withheld (consents missing from the dataset?)")
    # The same inbox as a gateway or partner app sends it: by hash (APQ), registered once.
    hashed = {"persistedQuery": {"version": 1, "sha256Hash": sha256(INBOX_QUERY)}}
    _get(
        base,
        token,
        load.Request("/graphql", json.dumps({"query": INBOX_QUERY, "extensions": hashed})),
    )
    persisted = load.Request("/graphql", json.dumps({"extensions": hashed}))
    by_hash = _graphql_data(_get(base, token, persisted), "GraphQL inbox by hash")
    if [edge["node"]["id"] for edge in by_hash["referrals"]["edges"]] != [
        edge["node"]["id"] for edge in edges
    ]:
        raise Broken("GraphQL inbox by hash: not the inbox")
    search = f"/fhir/Task?owner=Organization/{caller}&_count={PAGE}"
    for path in (search, search + "&_include=Task:focus"):
        bundle = _get(base, token, load.Request(path))
        tasks = [e for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Task"]
        if len(tasks) != PAGE:
            raise Broken(f"{path}: {len(tasks)} Tasks, expected {PAGE}")
        if "_include" in path and len(bundle["entry"]) == len(tasks):
            raise Broken(f"{path}: no ServiceRequest included")
    reads = [
        load.Request("/graphql", json.dumps({"query": REFERRAL_QUERY, "variables": {"id": i}}))
        for i in shown
    ]
    for request in reads[:3]:
        found = _graphql_data(_get(base, token, request), "GraphQL referral")["referral"]
        if found is None or found["id"] not in shown:
            raise Broken("GraphQL referral(id): wrong answer")
    tasks = [load.Request(f"/fhir/Task/{i}") for i in shown]
    for request in tasks[:3]:
        if _get(base, token, request).get("resourceType") != "Task":
            raise Broken("FHIR Task/{id}: not a Task")
    return [
        Endpoint(f"GraphQL inbox ({PAGE})", [inbox], "inbox"),
        Endpoint(f"GraphQL inbox ({PAGE}), persisted query", [persisted], "inbox"),
        Endpoint(f"FHIR Task?owner=…&_count={PAGE}", [load.Request(search)], "inbox"),
        Endpoint(
            "FHIR same, &_include=Task:focus",
            [load.Request(search + "&_include=Task:focus")],
            "inbox",
        ),
        Endpoint("GraphQL referral(id)", reads, "read"),
        Endpoint("FHIR Task/{id}", tasks, "read"),
    ], shown


def floor_endpoints(base: str, token: str, shown: list[str]) -> dict[str, list[load.Request]]:
    inbox = load.Request("/floor/inbox")
    if len(_get(base, token, inbox)["referrals"]) != PAGE:
        raise Broken(f"floor inbox: not {PAGE} referrals")
    reads = [load.Request(f"/floor/referral/{i}") for i in shown]
    if _get(base, token, reads[0])["id"] != shown[0]:
        raise Broken("floor read: wrong referral")
    return {"inbox": [inbox], "read": reads}


@dataclass(frozen=True)
class Timing:
    seconds: float
    warmup: float
    connections: int


def _measure(base: str, requests: list[load.Request], tokens: Tokens, timing: Timing) -> Any:
    measured = load.run(
        base,
        requests,
        tokens.take(),
        seconds=timing.seconds,
        warmup=timing.warmup,
        connections=timing.connections,
        server_pid=_SERVER_PIDS.get(base),
    )
    if measured.errors:
        raise Broken(f"{base}{requests[0].path}: {measured.errors} failed requests under load")
    return measured


def measure(
    dataset: Dataset,
    scratch: Path,
    timing: Timing,
    *,
    workers: int = 1,
    with_floor: bool = True,
    only: Callable[[Endpoint], bool] = lambda endpoint: True,
) -> list[Row]:
    with peerbridge(dataset, scratch, workers) as base:
        client_id, secret = asyncio.run(register_client(dataset))
        tokens = Tokens(base, client_id, secret)
        token = tokens.take(1)[0]
        timed, shown = endpoints(base, token, str(dataset.caller_organization_id))
        floors: dict[str, load.Measured] = {}
        if with_floor:
            with floor(dataset, scratch, base) as floor_base:
                for name, requests in floor_endpoints(floor_base, token, shown).items():
                    _log.info("timing floor %s", name)
                    floors[name] = _measure(floor_base, requests, tokens, timing)
        _seal_audit_backlog(dataset)
        rows = []
        for endpoint in filter(only, timed):
            _log.info("timing %s (%d worker(s))", endpoint.label, workers)
            rows.append(
                Row(
                    endpoint.label,
                    _measure(base, endpoint.requests, tokens, timing),
                    floors.get(endpoint.floor),
                )
            )
        return rows


def _seal_audit_backlog(dataset: Dataset) -> None:
    """Checkpoint the audit rows written so far (`peerbridge audit checkpoint`), before the
    server's rows are timed.

    The server seals new audit rows every minute (PEERBRIDGE_AUDIT_CHECKPOINT_INTERVAL_S) and
    at start: its own rows' sealing while timed is part of its cost, but not the floor's
    hundreds of thousands or an earlier run's, sealed by its first round in a timed row."""
    command = [str(Path(sys.executable).with_name("peerbridge")), "audit", "checkpoint"]
    env = {**os.environ, "DATABASE_URL": dataset.url, "PEERBRIDGE_KEY_ENCRYPTION_KEY": bench_kek()}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Broken(f"`peerbridge audit checkpoint` failed: {done.stderr[-500:]}")


def _admin_url() -> tuple[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    from api.db.embedded import EmbeddedPostgres

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "peerbridge-bench"
    embedded = EmbeddedPostgres(cache)
    return embedded.start(), embedded


def run(args: argparse.Namespace) -> Report:
    timing = Timing(args.seconds, args.warmup, args.connections)
    report = Report(args.referrals, args.workers)
    admin_url, embedded = _admin_url()
    try:
        dataset = asyncio.run(ensure(admin_url, args.referrals, args.seed))
        # Server logs go here; kept when a run fails, for the reason.
        scratch = Path(tempfile.mkdtemp(prefix="pb-bench-"))
        try:
            report.rows = measure(dataset, scratch, timing)
            baseline = {row.label: row.measured for row in report.rows}
            scaled = [report.rows[0].label, report.rows[2].label]  # GraphQL and FHIR inbox
            for workers in args.workers:
                if workers == 1:
                    report.scaling += [(label, 1, baseline[label]) for label in scaled]
                    continue
                for row in measure(
                    dataset, scratch, timing, workers=workers, with_floor=False,
                    only=lambda endpoint: endpoint.label in scaled,
                ):  # fmt: skip
                    report.scaling.append((row.label, workers, row.measured))
            if args.compare_size and args.compare_size != args.referrals:
                report.compare_size = args.compare_size
                other = asyncio.run(ensure(admin_url, args.compare_size, args.seed))
                for row in measure(other, scratch, timing, with_floor=False):
                    report.sizes.append((row.label, row.measured, baseline[row.label]))
        except BaseException:
            _log.error("server logs kept in %s", scratch)
            raise
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if embedded is not None:
            embedded.stop()
    return report


def _size(n: int) -> str:
    return (
        f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)
    )


def _ratio(part: float, whole: float) -> str:
    # A row with no finished request (a very short run on a busy machine) has no ratio.
    return f"{part / whole:.2f}" if whole else "–"


def _cpu(measured: load.Measured) -> str:
    return "–" if measured.cpu_ms is None else f"{measured.cpu_ms:.2f}"


def render(report: Report, timing: Timing) -> str:
    lines = [
        f"{_size(report.referrals)} referrals; {timing.connections} connections (wrk, loopback); "
        f"{timing.seconds:g} s per row after {timing.warmup:g} s warm-up; one worker per side",
        "",
        "| endpoint | req/s | p50 / p99 ms | floor req/s | ratio | server CPU ms/req "
        "(floor) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        m = row.measured
        floor_rate = f"{row.floor.rate:.0f}" if row.floor else "–"
        ratio = _ratio(m.rate, row.floor.rate) if row.floor else "–"
        cpu = _cpu(m) + (f" ({_cpu(row.floor)})" if row.floor else "")
        lines.append(
            f"| {row.label} | {m.rate:.0f} | {m.p50_ms:.0f} / {m.p99_ms:.0f} | {floor_rate} "
            f"| {ratio} | {cpu} |"
        )
    if len(report.scaling) > 2:
        lines += [
            "",
            "| endpoint | workers | req/s | p50 / p99 ms | × one worker |",
            "|---|---|---|---|---|",
        ]
        ones = {label: m.rate for label, workers, m in report.scaling if workers == 1}
        order = [row.label for row in report.rows]
        for label, workers, m in sorted(report.scaling, key=lambda s: (order.index(s[0]), s[1])):
            lines.append(
                f"| {label} | {workers} | {m.rate:.0f} | {m.p50_ms:.0f} / {m.p99_ms:.0f} "
                f"| {_ratio(m.rate, ones[label])} |"
            )
    if report.sizes and report.compare_size:
        small, big = _size(report.compare_size), _size(report.referrals)
        lines += [
            "",
            f"| endpoint | p99 ms at {small} | p99 ms at {big} | ratio |",
            "|---|---|---|---|",
        ]
        for label, at_small, at_big in report.sizes:
            lines.append(
                f"| {label} | {at_small.p99_ms:.0f} | {at_big.p99_ms:.0f} "
                f"| {_ratio(at_big.p99_ms, at_small.p99_ms)} |"
            )
    return "\n".join(lines)


def parse_workers(text: str) -> list[int]:
    try:
        found = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of worker counts") from None
    if not found or found[0] < 1:
        raise argparse.ArgumentTypeError("worker counts are 1 or more")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="build the data, run both servers, print the table")
    runner.add_argument("--referrals", type=int, default=10_000, help="dataset size (10000)")
    runner.add_argument("--seed", type=int, default=1, help="generator seed (1)")
    runner.add_argument(
        "--workers", type=parse_workers, default=[1, 2], help="scaling rows, e.g. 1,2 (1,2)"
    )
    runner.add_argument(
        "--compare-size", type=int, default=10_000,
        help="also measure p99 at this size when it differs from --referrals (10000; 0 = no)",
    )  # fmt: skip
    runner.add_argument("--seconds", type=float, default=15.0, help="timed seconds per row (15)")
    runner.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per row (3)")
    runner.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    runner.add_argument(
        "--quick", action="store_true", help="smoke run: 2 s per row, 1 s warm-up, one worker"
    )
    runner.add_argument("--json", type=Path, help="also write the results here as JSON")
    profiler = commands.add_parser(
        "profile", help="py-spy the server while wrk drives one endpoint; print the hot spots"
    )
    profiler.add_argument("endpoint", help="part of an endpoint's label, e.g. 'referral(id)'")
    profiler.add_argument("--referrals", type=int, default=10_000)
    profiler.add_argument("--seconds", type=float, default=15.0)
    profiler.add_argument("--out", type=Path, default=Path("benchmarks/profiles"))
    build = commands.add_parser("build", help="only build (or find) the dataset")
    build.add_argument("--referrals", type=int, default=10_000)
    build.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "build":
        admin_url, embedded = _admin_url()
        try:
            dataset = asyncio.run(ensure(admin_url, args.referrals, args.seed))
        finally:
            if embedded is not None:
                embedded.stop()
        print(dataset.url)
        return 0
    if args.command == "profile":
        from benchmarks.profile import profile

        print(profile(args.endpoint, args.referrals, args.seconds, args.out))
        return 0
    if args.quick:
        args.seconds, args.warmup, args.workers = 2.0, 1.0, [1]
    load.wrk_binary()  # fail before building anything when the load generator is missing
    report = run(args)
    timing = Timing(args.seconds, args.warmup, args.connections)
    print(render(report, timing))
    if args.json:
        args.json.write_text(json.dumps(_as_json(report), indent=2))
    return 0


def _as_json(report: Report) -> dict[str, Any]:
    def m(measured: load.Measured | None) -> dict[str, float | None] | None:
        if measured is None:
            return None
        return {
            "rps": measured.rate,
            "p50_ms": measured.p50_ms,
            "p99_ms": measured.p99_ms,
            "cpu_ms_per_request": measured.cpu_ms,
        }

    return {
        "referrals": report.referrals,
        "rows": [
            {"endpoint": r.label, **(m(r.measured) or {}), "floor": m(r.floor)} for r in report.rows
        ],
        "scaling": [
            {"endpoint": label, "workers": w, **(m(x) or {})} for label, w, x in report.scaling
        ],
        "sizes": [
            {
                "endpoint": label,
                "small": m(a),
                "large": m(b),
                "small_referrals": report.compare_size,
            }
            for label, a, b in report.sizes
        ],
    }

"""Cost of bearer-token validation per request, in microseconds, with baselines from the same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/token_validation.py [--iterations 3000] [--repeats 7]

Rows (median of `repeats` runs, each `iterations` calls, one event loop, one core):
  baseline  RS256 verify, cryptography only      the floor: the RSA public-key operation + SHA-256
  baseline  joserfc deserialize_compact          the library's JWS verify with an allow-list
  tokens.verify                                   ours: parse, header rules, key ring, signature,
                                                  RFC 9068 claim checks
  authenticate, first use of a token              + issuer routing, revocation check from the
                                                  per-process status cache, Principal
  authenticate, repeat use (verified cache)       the same token again: SHA-256, cache lookup,
                                                  expiry, key still in the ring, client status
  authenticate, repeat use, status from DB        the same with the status cache expired: one
                                                  indexed query (once per client per TTL, 5 s)
  client status query alone                       what checking revocation on *every* request
                                                  would add without the cache
  middleware, no token / with a repeat token      the pure-ASGI middleware around an empty app

Needs a PostgreSQL where it may CREATE DATABASE (it makes and drops a scratch one); without
DATABASE_URL only the CPU rows run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jws as jose_jws
from joserfc.jwk import Key, RSAKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import jws, tokens  # noqa: E402
from api.auth.authenticator import Authenticator, StatusCache  # noqa: E402
from api.auth.config import AuthConfig  # noqa: E402
from api.auth.keys import SigningKey  # noqa: E402
from api.domain.scopes import parse_scopes  # noqa: E402

ISSUER = "https://peerbridge.example"


def _b64decode(segment: bytes) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def measure(name: str, fn: Callable[[], Any], iterations: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter_ns() - started) / iterations / 1000)
    median = statistics.median(samples)
    print(f"  {name:<44} {median:8.1f} µs   (min {min(samples):.1f})")
    return median


async def measure_async(name: str, fn: Callable[[], Awaitable[Any]], iterations: int,
                        repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for _ in range(iterations):
            await fn()
        samples.append((time.perf_counter_ns() - started) / iterations / 1000)
    median = statistics.median(samples)
    print(f"  {name:<44} {median:8.1f} µs   (min {min(samples):.1f})")
    return median


class _FixedKeys:
    """Stands in for SigningKeys with a ring already loaded (the steady state)."""

    def __init__(self, kid: str, key: Key) -> None:
        self._found = ("RS256", key)
        self._kid = kid

    async def verifier(self, kid: str) -> tuple[str, Key] | None:
        return self._found if kid == self._kid else None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n, r = args.iterations, args.repeats

    key = RSAKey.generate_key(2048, private=True)
    signer = SigningKey("bench-kid", "RS256", key)
    url = os.environ.get("DATABASE_URL")
    admin = await asyncpg.connect(url) if url else None
    db_name = f"pb_bench_{secrets.token_hex(3)}"
    pool = None
    try:
        client_id = "bench-client"
        organization_id = None
        if admin is not None and url is not None:
            from api.db.databases import create_database, url_for_database
            from api.db.migrate import migrate

            await create_database(admin, db_name)
            bench_url = url_for_database(url, db_name)
            await migrate(bench_url)
            pool = await asyncpg.create_pool(bench_url, min_size=1, max_size=2)
            organization_id = await pool.fetchval(
                "INSERT INTO organizations (name, kind) VALUES ('Bench', 'clinic') RETURNING id")
            await pool.execute(
                "INSERT INTO oauth_clients (client_id, organization_id, name, auth_method,"
                " secret_hash, allowed_scopes) VALUES ($1, $2, 'bench', 'client_secret_basic',"
                " 'scrypt$x', '{system/*.cruds}')", client_id, organization_id)
        from uuid import uuid4

        organization_id = organization_id or uuid4()
        token, _ = tokens.mint(signer, issuer=ISSUER, audience=ISSUER, client_id=client_id,
                               organization_id=organization_id,
                               scopes=parse_scopes(["system/ServiceRequest.rs",
                                                    "system/Task.cruds"]),
                               now=int(time.time()), lifetime=300)
        raw = token.encode()
        print(f"token: {len(raw)} bytes, RS256, RSA-2048; {n} calls x {r} runs, median per call")

        public = key.public_key
        head_payload, _, signature = raw.rpartition(b".")
        sig = _b64decode(signature)

        def bare_verify() -> None:
            public.verify(sig, head_payload, padding.PKCS1v15(), hashes.SHA256())

        public_only = RSAKey.import_key(key.as_dict(private=False))

        def joserfc_verify() -> None:
            jose_jws.deserialize_compact(raw, public_only, algorithms=["RS256"])

        floor = measure("baseline: RS256 verify (cryptography)", bare_verify, n, r)
        measure("baseline: joserfc deserialize_compact", joserfc_verify, n, r)

        keys = _FixedKeys("bench-kid", public_only)
        now = int(time.time())

        async def ours() -> None:
            await tokens.verify(jws.parse(token), keys.verifier, issuer=ISSUER, audience=ISSUER,
                                now=now, leeway=30)

        ours_us = await measure_async("tokens.verify (ours)", ours, n, r)

        if pool is not None:
            config = AuthConfig(public_url=ISSUER, data_dir=Path(tempfile.gettempdir()))
            cached = StatusCache(pool, ttl=3600)
            auth = Authenticator(config, keys, cached)  # type: ignore[arg-type]
            async def first_use() -> None:
                auth._verified.clear()  # as if each request brought a token never seen
                await auth.authenticate(token)

            full = await measure_async("authenticate, first use of a token", first_use, n, r)
            repeat = await measure_async("authenticate, repeat use (verified cache)",
                                         lambda: auth.authenticate(token), n, r)
            uncached = StatusCache(pool, ttl=0)
            auth_db = Authenticator(config, keys, uncached)  # type: ignore[arg-type]
            db = await measure_async("authenticate, repeat use, status from DB",
                                     lambda: auth_db.authenticate(token), max(n // 5, 200), r)
            from api.db.clients import ClientRepository

            repo = ClientRepository(pool)
            status_only = await measure_async("client status query alone",
                                              lambda: repo.status(client_id), max(n // 5, 200), r)
            await _middleware_rows(auth, token, n, r)
            print()
            print()
            print(f"  first use of a token: {full:.0f} µs = {full / floor:.1f}x a bare RS256 "
                  f"verify ({floor:.0f} µs); tokens.verify alone {ours_us:.0f} µs")
            print(f"  every later request with that token: {repeat:.1f} µs "
                  f"(hash + cache + revocation check from the status cache)")
            print(f"  without the status cache every request would pay ≈ {status_only:.0f} µs "
                  f"more (one query); with it, {db:.0f} µs once per client per 5 s")
    finally:
        if pool is not None:
            await pool.close()
        if admin is not None:
            from api.db.databases import drop_database

            await drop_database(admin, db_name)
            await admin.close()


async def _middleware_rows(auth: Authenticator, token: str, n: int, r: int) -> None:
    from api.auth.middleware import AuthenticationMiddleware

    class _State:
        pass

    class _App:
        def __init__(self) -> None:
            self.state = _State()
            self.state.auth = type("R", (), {"authenticator": auth})()  # type: ignore[attr-defined]

    async def empty(scope: Any, receive: Any, send: Any) -> None:
        return None

    middleware = AuthenticationMiddleware(empty)
    app = _App()

    def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {"type": "http", "path": "/fhir/Task", "headers": headers, "app": app,
                "client": ("127.0.0.1", 5000)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    bearer = [(b"authorization", f"Bearer {token}".encode())]
    await measure_async("middleware, no token", lambda: middleware(scope([]), receive, send),
                        n, r)
    await measure_async("middleware, with a repeat token",
                        lambda: middleware(scope(bearer), receive, send), n, r)


if __name__ == "__main__":
    asyncio.run(main())

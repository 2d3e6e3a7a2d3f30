"""`peerbridge audit checkpoint|verify|export|accounting`: the trail's evidence and outputs."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from uuid import UUID

import asyncpg

from api.auth import kek
from api.auth.audit_seal import CheckpointSigning, CheckpointVerification
from api.auth.config import from_settings
from api.auth.keys import SigningKeys
from api.auth.runtime import load_kek
from api.cli.common import CliError, database, load_settings, open_pool, run_with_pool
from api.db.audit_evidence import PostgresAuditEvidenceStore
from api.db.audit_partitions import AuditPartition, create_ahead, list_partitions
from api.db.signing_keys import SigningKeyRepository
from api.db.uow import PostgresUnitOfWork
from api.integrations.fhir.resources.accounting import to_fhir_accounting_bundle
from api.integrations.fhir.resources.audit import to_fhir_audit_event
from api.services import audit_accounting, audit_integrity
from api.settings import Settings

# `verify` found the trail altered (1 stays "could not run", 2 "bad arguments").
EXIT_TAMPERED = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="seal, verify and export the audit trail",
        description="The audit trail is append-only; these commands seal it with signed "
        "checkpoints, verify it, and export it (operator only).",
    )
    commands = parser.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    checkpoint = commands.add_parser(
        "checkpoint", help="seal the rows written since the last checkpoint",
        description="Sign checkpoints over every audit row whose transaction has finished and "
        "is not sealed yet (`serve` does this every PEERBRIDGE_AUDIT_CHECKPOINT_INTERVAL_S).",
    )
    checkpoint.set_defaults(handler=_checkpoint)

    verify = commands.add_parser(
        "verify", help="recompute the trail and check every checkpoint",
        description="Recompute every row's hash and every checkpoint's Merkle root, check "
        "signatures and the chain; print each row altered, removed or inserted out of band "
        f"and each bad checkpoint. Exits {EXIT_TAMPERED} when anything is found.",
    )
    verify.add_argument(
        "--witness", action="append", default=[], metavar="SEQ:DIGEST",
        help="a checkpoint head recorded earlier (logged with each checkpoint) that must "
        "still be in the chain; repeatable",
    )
    verify.set_defaults(handler=_verify)

    export = commands.add_parser(
        "export", help="write the trail as FHIR AuditEvent NDJSON (for a SIEM)",
        description="One FHIR R4 AuditEvent per line (Bulk Data NDJSON), oldest first. "
        "Rows become visible when their transaction commits: a feed exporting consecutive "
        "windows should overlap them a little and drop repeated ids.",
    )
    export.add_argument("--since", required=True, type=_instant, help="instant, inclusive")
    export.add_argument("--until", type=_instant, help="instant, exclusive (default: now)")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.set_defaults(handler=_export)

    accounting = commands.add_parser(
        "accounting", help="a patient's accounting of disclosures (45 CFR 164.528)",
        description="Every disclosure of the patient's data to an organization other than "
        "the record holder in [--from, --to): date, recipient, what, purpose, consent. "
        "Producing it is itself audited.",
    )
    accounting.add_argument("--patient", required=True, type=UUID, help="patient id")
    accounting.add_argument("--from", dest="since", required=True, type=_instant)
    accounting.add_argument("--to", dest="until", required=True, type=_instant)
    accounting.add_argument("--format", choices=("bundle", "csv"), default="bundle")
    accounting.add_argument("--out", type=Path, help="file to write (default: standard output)")
    accounting.set_defaults(handler=_accounting)

    partitions = commands.add_parser(
        "partitions", help="list the trail's month partitions, or create the coming ones",
        description="The trail is partitioned by UTC month (audit_events_YYYY_MM) with a "
        "DEFAULT partition for rows of a month that has none. `serve` creates "
        "PEERBRIDGE_AUDIT_PARTITION_MONTHS_AHEAD months ahead; --create-ahead does it now "
        "(for deployments that run it from a scheduler). Retention: README, Audit at scale.",
    )
    partitions.add_argument(
        "--create-ahead", type=_months, metavar="MONTHS",
        help="first create the current month's partition and the next MONTHS (0-120)",
    )
    partitions.add_argument("--json", action="store_true", help="one JSON object per partition")
    partitions.set_defaults(handler=_partitions)


def _months(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 120:
        raise argparse.ArgumentTypeError(f"a number of months from 0 to 120, not {text!r}")
    return int(text)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with a zone (`2026-11-01T00:00:00Z`), or a date (midnight UTC)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from None
    if len(text) == 10:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a time zone, e.g. {text}Z")
    return value


def _kek(settings: Settings) -> kek.KeyEncryptionKey:
    try:
        return load_kek(from_settings(settings), production=settings.is_production)
    except kek.KeyEncryptionError as error:
        raise CliError(str(error)) from None


def _checkpoint(args: argparse.Namespace) -> int:
    settings = load_settings()
    key_encryption_key = _kek(settings)
    with database(settings) as resolved:

        async def run() -> list[str]:
            async with open_pool(resolved) as pool:
                keys = SigningKeys(pool, key_encryption_key)
                await keys.ensure_active()
                taken = await audit_integrity.take_checkpoints(
                    PostgresAuditEvidenceStore(pool), CheckpointSigning(keys, key_encryption_key)
                )
            return [f"checkpoint {c.seq}: {c.row_count} rows" for c in taken]

        lines = asyncio.run(run())
    print("\n".join(lines) if lines else "nothing to seal")
    return 0


def _verify(args: argparse.Namespace) -> int:
    settings = load_settings()
    key_encryption_key = _kek(settings)
    with database(settings) as resolved:

        async def run() -> audit_integrity.VerificationReport:
            async with open_pool(resolved) as pool:
                async with pool.acquire() as conn:
                    records = await SigningKeyRepository(conn).all()
                return await audit_integrity.verify_trail(
                    PostgresAuditEvidenceStore(pool),
                    CheckpointVerification(records, key_encryption_key),
                    witnesses=args.witness,
                )

        report = asyncio.run(run())
    print(
        f"checked {report.checkpoints} checkpoints ({report.sealed_rows} sealed rows) and "
        f"{report.unsealed_rows} rows not sealed yet"
    )
    if report.head is not None:
        head = report.head
        print(f"head {audit_integrity.head_digest(head.claims.seq, head.signed.signature)}")
    for finding in report.findings:
        print(finding)
    if report.clean:
        print("audit trail verified: nothing altered, removed or inserted out of band")
        return 0
    print(f"audit trail NOT verified: {len(report.findings)} problem(s)")
    return EXIT_TAMPERED


def _export(args: argparse.Namespace) -> int:
    until = args.until or datetime.now(UTC)
    with database(load_settings()) as resolved, _output(args.out) as out:

        async def run() -> int:
            count = 0
            async with open_pool(resolved) as pool:
                events = audit_accounting.export_events(
                    lambda: PostgresUnitOfWork(pool), args.since, until
                )
                async for event in events:
                    out.write(json.dumps(to_fhir_audit_event(event), separators=(",", ":")))
                    out.write("\n")
                    count += 1
            return count

        count = asyncio.run(run())
    print(f"exported {count} AuditEvents recorded in [{args.since.isoformat()}, "
          f"{until.isoformat()})", file=sys.stderr)
    return 0


def _accounting(args: argparse.Namespace) -> int:
    settings = load_settings()
    with database(settings) as resolved:

        async def run() -> audit_accounting.Accounting:
            async with open_pool(resolved) as pool:
                return await audit_accounting.accounting_of_disclosures(
                    lambda: PostgresUnitOfWork(pool),
                    args.patient,
                    args.since,
                    args.until,
                    operator=_operator(),
                )

        accounting = asyncio.run(run())
    with _output(args.out) as out:
        if args.format == "csv":
            out.write(accounting_csv(accounting))
        else:
            bundle = to_fhir_accounting_bundle(accounting, f"{settings.base_url}/fhir")
            out.write(json.dumps(bundle, indent=2) + "\n")
    print(f"{len(accounting.events)} disclosures in {len(accounting.lines)} lines",
          file=sys.stderr)
    return 0


def _partitions(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> tuple[list[str], list[AuditPartition]]:
        async with pool.acquire() as conn:
            created = [] if args.create_ahead is None else await create_ahead(
                conn, args.create_ahead
            )
            return created, await list_partitions(conn)

    created, partitions = run_with_pool(work)
    for name in created:
        print(f"created {name}", file=sys.stderr)
    for partition in partitions:
        if args.json:
            print(json.dumps({
                "name": partition.name,
                "from": partition.since.isoformat() if partition.since else None,
                "to": partition.until.isoformat() if partition.until else None,
                "estimated_rows": max(partition.estimated_rows, 0),
                "bytes": partition.total_bytes,
            }))
        else:
            span = (
                f"{partition.since:%Y-%m-%d} .. {partition.until:%Y-%m-%d}"
                if partition.since and partition.until else "DEFAULT"
            )
            print(f"{partition.name}\t{span}\t~{max(partition.estimated_rows, 0)} rows\t"
                  f"{partition.total_bytes} bytes")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return f"uid {os.getuid()}"


_CSV_HEADER = ("date", "recipient_organization", "recipient_organization_id", "what",
               "purpose", "consent", "disclosures")


def accounting_csv(accounting: audit_accounting.Accounting) -> str:
    """One line per day, recipient, purpose and consents (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for line in accounting.lines:
        writer.writerow((
            line.day.isoformat(),
            _cell(line.recipient_name),
            str(line.recipient_id),
            " ".join(line.resource_types),
            _cell(line.purpose),
            " ".join(str(consent) for consent in line.consent_ids),
            line.count,
        ))
    return buffer.getvalue()


def _cell(text: str) -> str:
    # A spreadsheet would run a cell starting with one of these as a formula (CSV injection).
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    """Standard output, or a new file written whole (0600) and moved into place at the end."""
    if path is None:
        yield sys.stdout
        return
    directory = path.resolve().parent
    fd, draft = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(draft, path)
    finally:
        Path(draft).unlink(missing_ok=True)

"""`peerbridge graphql register|list`: the trusted-documents allowlist (operators).

`register` takes Apollo persisted-query manifests (`persisted-query-manifest.json`, as
`@apollo/generate-persisted-query-manifest` writes them) and `.graphql` files (each file one
document, named after the file). Every document must validate against the schema, and a
manifest's ids must be the SHA-256 of their bodies; otherwise nothing is registered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import asyncpg

from api.cli.common import CliError, load_settings, run_with_pool
from api.db import graphql_documents
from api.db.graphql_documents import StoredDocument
from api.schema.schema import build_schema
from api.schema.trusted_documents import schema_errors, sha256_of

_MANIFEST_FORMAT = "apollo-persisted-query-manifest"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "graphql",
        help="register and list trusted GraphQL documents (the allowlist)",
        description="With PEERBRIDGE_GRAPHQL_TRUSTED_DOCUMENTS=allowlist only registered "
        "documents run; clients send them by SHA-256 (Apollo persisted queries) or in full.",
    )
    commands = parser.add_subparsers(dest="graphql_command", metavar="COMMAND", required=True)
    adding = commands.add_parser(
        "register",
        help="add documents to the allowlist",
        description="Add the documents of Apollo persisted-query manifests (.json) and "
        ".graphql files to the allowlist. All are checked first; one bad document registers "
        "nothing.",
    )
    adding.add_argument("files", nargs="+", type=Path, metavar="FILE")
    adding.set_defaults(handler=_register)
    listing = commands.add_parser(
        "list", help="list the allowlist", description="List the allowlisted documents."
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)


def _register(args: argparse.Namespace) -> int:
    documents = [document for path in args.files for document in _read(path)]
    schema = build_schema(load_settings())._schema
    for document in documents:
        problems = schema_errors(schema, document.document)
        if problems:
            raise CliError(f"{document.name}: not a valid operation: {problems[0]}")

    async def add(pool: asyncpg.Pool) -> int:
        return await graphql_documents.allowlist(pool, documents)

    added = run_with_pool(add)
    print(f"registered {len(documents)} documents ({added} new to the allowlist)")
    return 0


def _read(path: Path) -> list[StoredDocument]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path}: {error}") from None
    if path.suffix.lower() in (".graphql", ".gql"):
        if not text.strip():
            raise CliError(f"{path}: empty document")
        return [StoredDocument(sha256_of(text), text, True, path.stem[:200] or None)]
    try:
        manifest = json.loads(text)
    except ValueError:
        raise CliError(f"{path}: neither a .graphql file nor a JSON manifest") from None
    return _manifest_documents(path, manifest)


def _manifest_documents(path: Path, manifest: Any) -> list[StoredDocument]:
    if not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT:
        raise CliError(f"{path}: not an Apollo persisted-query manifest ({_MANIFEST_FORMAT})")
    if manifest.get("version") != 1:
        raise CliError(f"{path}: manifest version {manifest.get('version')!r} (1 is supported)")
    operations = manifest.get("operations")
    if not isinstance(operations, list):
        raise CliError(f"{path}: `operations` must be a list")
    found = []
    for index, operation in enumerate(operations):
        where = f"{path}: operations[{index}]"
        if not isinstance(operation, dict):
            raise CliError(f"{where}: not an object")
        body, name, wanted = operation.get("body"), operation.get("name"), operation.get("id")
        if not isinstance(body, str) or not body.strip():
            raise CliError(f"{where}: `body` must be the document")
        if wanted != sha256_of(body):
            raise CliError(f"{where}: `id` is not the SHA-256 of `body`")
        label = name[:200] if isinstance(name, str) and name else None
        found.append(StoredDocument(wanted, body, True, label))
    return found


def _list(args: argparse.Namespace) -> int:
    documents = run_with_pool(graphql_documents.allowlisted)
    if args.json:
        for document in documents:
            print(
                json.dumps(
                    {
                        "sha256": document.sha256,
                        "name": document.name,
                        "registered": document.created_at.isoformat()
                        if document.created_at
                        else None,
                    }
                )
            )
    elif not documents:
        print("no documents allowlisted yet: add them with `peerbridge graphql register`")
    else:
        for document in documents:
            print(f"{document.sha256}  {document.name or '-'}")
    return 0

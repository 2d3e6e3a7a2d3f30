"""`peerbridge schema`: print the GraphQL subgraph SDL (what `_service { sdl }` serves)."""

from __future__ import annotations

import argparse

from api.schema.schema import print_sdl


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the GraphQL subgraph SDL",
        description="Print the federated subgraph SDL (Federation v2.9), exactly as "
        "`{ _service { sdl } }` serves it, e.g. for `rover subgraph check` or a gateway's "
        "supergraph build. Needs no database.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(print_sdl(), end="\n")
    return 0

"""Checking the fidelity rule: what a client sent is what it reads back.

Read back, a resource carries every element that was sent, as sent; the server may add its own
id and meta (and keeps the client's meta.profile, tag, security and source), may add elements
it derives (`derived`), and compares the references it checks or re-points by their target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

Json = dict[str, Any]

_SERVER = frozenset({"resourceType", "id", "meta"})


def _target(value: Any) -> Any:
    """A reference (or a list of them) as what it points at."""
    if isinstance(value, list):
        return [_target(v) for v in value]
    if isinstance(value, dict) and "reference" in value:
        return value["reference"]
    if isinstance(value, dict):
        return {k: _target(v) for k, v in value.items()}
    return value


def differences(
    sent: Json,
    read: Json,
    *,
    references: Iterable[str] = (),
    derived: Iterable[str] = (),
) -> list[str]:
    """Why `read` is not `sent` read back (empty when it is). `references`: elements compared
    by target; `derived`: elements the server may add that were not sent."""
    by_target, added = frozenset(references), frozenset(derived)
    problems = []
    for key, value in sent.items():
        if key in ("resourceType", "id"):
            continue
        if key == "meta":
            mine = read.get("meta", {})
            for label, values in value.items():
                if label in ("profile", "tag", "security"):
                    missing = [v for v in values if v not in mine.get(label, [])]
                    if missing:
                        problems.append(f"meta.{label} lost {missing}")
                elif label == "source" and mine.get("source") != values:
                    problems.append("meta.source changed")
        elif key == "extension":
            missing = [e for e in value if e not in read.get("extension", [])]
            if missing:
                problems.append(f"extension lost {json.dumps(missing)[:200]}")
        elif key not in read:
            problems.append(f"{key} dropped")
        elif key in by_target:
            if _target(read[key]) != _target(value):
                problems.append(f"{key} points elsewhere")
        elif read[key] != value:
            problems.append(f"{key} changed: {json.dumps(read[key])[:300]}")
    extra = set(read) - set(sent) - _SERVER - added - {"extension"}
    problems.extend(f"{key} added" for key in sorted(extra))
    return problems


def assert_read_back(sent: Json, *reads: Json, **options: Iterable[str]) -> None:
    for read in reads:
        problems = differences(sent, read, **options)
        assert not problems, problems


def expressions(outcome: Json) -> list[str]:
    return [x for issue in outcome.get("issue", ()) for x in issue.get("expression", ())]

"""The input guard both doors (GraphQL, FHIR) apply at their edge, before anything else reads a
request: JSON bounded in depth before the parser can recurse, and no string that no field may
hold (NUL, unpaired surrogates; see `api.domain.text`).

The depth is measured on the raw bytes, without recursion, before `json.loads` runs: the
standard parser recurses once per nesting level, so a body of 100,000 `[` would otherwise reach
Python's recursion limit (RecursionError, a 500).
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

from api.domain.errors import Invalid, InvalidDetail, MalformedRequest
from api.domain.text import unstorable

# Bytes that are neither brackets nor braces, deleted before counting depth.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Openers to +1 and closers to -1 (0xff read as a signed byte).
_TO_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# A JSON escape that may decode to NUL or to a surrogate: only these need the full walk.
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# Object keys shown as they are in a field path; any other key is shown as `?`.
_PLAIN_KEY = re.compile(r"[A-Za-z_$@][A-Za-z0-9_$@-]{0,99}")


def nesting_depth(raw: bytes) -> int:
    """How deep the brackets of a JSON text nest, ignoring those inside strings.

    Escapes are dropped first (`\\\\` and `\\"`, left to right as a JSON parser reads them), so
    every remaining `"` opens or closes a string and splitting on it leaves the text outside
    strings at the even positions. For any prefix a parser reads before it fails, this counts
    the nesting it reaches, so it also bounds what `json.loads` does with malformed input.
    """
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    steps = array("b", outside_strings.translate(_TO_STEPS, _NOT_BRACKETS))
    return max(accumulate(steps), default=0)


def parse_json(
    raw: bytes | str,
    *,
    max_depth: int,
    root: Callable[[Any], str] = lambda _: "",
) -> Any:
    """The JSON value of a request body or parameter, refused when it is not UTF-8 JSON
    (`MalformedRequest`), nests deeper than `max_depth`, or holds a string no field may hold
    (`Invalid` naming its path under `root(value)`, e.g. `variables.input.givenName`)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if nesting_depth(data) > max_depth:
        raise MalformedRequest(f"JSON nested deeper than {max_depth} levels is refused")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not UTF-8") from None
    except ValueError:
        raise MalformedRequest("the body is not JSON") from None
    if _RISKY_ESCAPE.search(data):
        check_strings(value, root(value))
    return value


def check_strings(value: Any, root: str = "") -> None:
    """Refuse (`Invalid`, naming each path) strings and keys no field may hold."""
    problems: list[InvalidDetail] = []
    _walk(value, root, problems)
    if problems:
        raise Invalid(problems)


def check_text(value: str, field: str) -> None:
    """One header or query parameter: a malformed request (`MalformedRequest` naming `field`)
    when no field could hold it."""
    reason = unstorable(value)
    if reason is not None:
        raise MalformedRequest(reason, field=field)


def check_parameters(pairs: Iterable[tuple[str, str]]) -> None:
    """Query parameters: each name and value, refused naming the parameter."""
    for name, value in pairs:
        reason = unstorable(name)
        if reason is not None:
            raise MalformedRequest(f"a parameter name {reason}")
        check_text(value, name)


def _walk(value: Any, path: str, problems: list[InvalidDetail]) -> None:
    # Recursion is bounded: only values parse_json admitted (depth <= max_depth) get here.
    if isinstance(value, str):
        reason = unstorable(value)
        if reason is not None:
            problems.append(InvalidDetail(path, reason))
    elif isinstance(value, dict):
        for key, item in value.items():
            reason = unstorable(key)
            if reason is not None:
                problems.append(InvalidDetail(path, f"a key {reason}"))
                continue
            shown = key if _PLAIN_KEY.fullmatch(key) else "?"
            _walk(item, f"{path}.{shown}" if path else shown, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", problems)

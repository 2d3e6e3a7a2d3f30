"""Run the independent Node validators (@medplum/core 4.5 R4 + FHIR.js 4.12) over many
resources in one Node process."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "js" / "validate_fhir.mjs"
ROOT = Path(__file__).parents[2]


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "@medplum").exists()


def expand(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each resource, and each Bundle's entries on their own too (clearer error locations)."""
    out = []
    for resource in resources:
        out.append(resource)
        if resource.get("resourceType") == "Bundle":
            out.extend(expand(e["resource"] for e in resource.get("entry", ()) if "resource" in e))
    return out


def validate(resources: Sequence[dict[str, Any]]) -> list[str]:
    """Every error either validator reports, as `Type[index] validator: message`."""
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(list(resources)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    problems = []
    for result in json.loads(done.stdout):
        for validator in ("medplum", "fhirjs"):
            for message in result[validator]:
                problems.append(
                    f"{result['resourceType']}[{result['index']}] {validator}: {message}"
                )
    return problems

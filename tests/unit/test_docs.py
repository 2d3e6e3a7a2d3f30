"""The project's docs point only at what the repository holds: every link and every path named
in README.md and docs/ exists, README links every document, and nothing names a file from
outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
# A path in backticks that starts at a top-level folder of the repository (`*` globs; a
# placeholder such as NNNN names a pattern, not a file).
_NAMED_PATH = re.compile(r"`((?:api|deploy|docs|tests|benchmarks|scripts)/[\w./*-]*[\w*])")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_link_and_named_path_exists() -> None:
    missing = []
    for page in PAGES:
        text = page.read_text()
        for target in _LINK.findall(text):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name}: link {target}")
        for named in _NAMED_PATH.findall(text):
            if "NNNN" not in named and not list(ROOT.glob(named)):
                missing.append(f"{page.name}: {named}")
    assert missing == []


def test_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [d.name for d in DOCS if f"](docs/{d.name})" not in readme] == []


def test_no_file_names_a_document_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    outside = ("DESIGN" + ".md", "KNOWLEDGE" + ".md", "STYLE" + ".md")
    naming = [
        name for name in tracked
        if not name.endswith(("package-lock.json", ".pdf"))
        and (ROOT / name).is_file()
        and any(o in (ROOT / name).read_text(errors="replace") for o in outside)
    ]
    assert naming == []

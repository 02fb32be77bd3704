"""The repository's documentation: README size, links that resolve, method citations that exist, and no
work-history labels in tracked text files. Skipped outside a git checkout (e.g. an installed package)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 15 * 1024  # bytes: the README is a user guide; figures live in docs/results.md
# built from parts so that a search of the repository for these labels does not find this file
_WORD = "sess" + "ion"
WORK_HISTORY = re.compile(rf"{_WORD}s? [0-9]|this {_WORD}|previous {_WORD}|{_WORD}'s", re.IGNORECASE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CITATION = re.compile(r"docs/method\.md §([A-Z](?:\.\d+)?)")


def _tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the documentation checks need the repository")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"git ls-files failed: {out.stderr.decode(errors='replace').strip()}")
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def _markdown_files() -> list[Path]:
    return [p for p in _tracked_files() if p.suffix == ".md" and p.is_file()]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file (repeated headings get ``-1``, ``-2``, ...; code blocks skipped)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = re.match(r"#{1,6} (.+)", line)
        if in_code or not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_readme_is_a_short_user_guide():
    _tracked_files()
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes, more than {README_LIMIT}: move figures to docs/"


def test_slug_follows_github():
    assert slug("§A. The Compositional Network (one boxed object)") == "a-the-compositional-network-one-boxed-object"
    assert slug("Real occlusions (COCOA)") == "real-occlusions-cocoa"
    assert slug("What `occseg demo` does") == "what-occseg-demo-does"


def test_relative_links_resolve():
    broken = []
    for md in _markdown_files():
        text = md.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # links inside code blocks are not links
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (md.parent / file_part).resolve() if file_part else md
            rel = md.relative_to(ROOT)
            if not dest.exists():
                broken.append(f"{rel}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{rel}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_method_citations_name_existing_sections():
    method = ROOT / "docs" / "method.md"
    tracked = _tracked_files()
    if not method.exists():
        pytest.skip("docs/method.md is absent")
    headings = [line for line in method.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    missing = []
    for path in tracked:
        if path.suffix != ".py" or not path.is_file():
            continue
        for section in CITATION.findall(path.read_text(encoding="utf-8")):
            if not any(f"§{section}." in h or f"§{section} " in h for h in headings):
                missing.append(f"{path.relative_to(ROOT)}: §{section}")
    assert not missing, "citations of sections docs/method.md does not have:\n" + "\n".join(sorted(set(missing)))


def test_no_work_history_labels():
    hits = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (images, model files)
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if WORK_HISTORY.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "date a figure or name its commit instead:\n" + "\n".join(hits)


def test_tables_have_one_column_count():
    bad = []
    for md in _markdown_files():
        lines = md.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines[:-1], 1):
            if not (line.startswith("|") and re.fullmatch(r"\|[-:| ]+\|", lines[number])):
                continue  # not a table header
            width = line.count("|")
            for offset, row in enumerate(lines[number - 1 :]):
                if not row.startswith("|"):
                    break
                cells = re.sub(r"`[^`]*`", "", row).count("|")  # a pipe inside code is no column
                if cells != width:
                    bad.append(f"{md.relative_to(ROOT)}:{number + offset}: {cells - 1} columns, header {width - 1}")
    assert not bad, "tables with rows of another width:\n" + "\n".join(bad)

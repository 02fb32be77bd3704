"""The repository's documentation: README size, links that resolve, method citations that exist, and no
work-history labels in tracked text files. Skipped outside a git checkout (e.g. an installed package)."""

from __future__ import annotations

import ast
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
# docs/method.md cites code as `compnet/learn.py`: `train_compnet`, `fit_class` or `evaluation/protocol.py` (`evaluate`)
CODE_PATH = re.compile(r"`((?:[\w-]+/)*[\w-]+\.py)`")
CODE_NAMES = re.compile(r"\A(?::\s*|\s*\(\s*)((?:`[\w.]+`(?:,\s*(?:and\s+)?|\s+and\s+)?)+)")


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


def code_references(text: str) -> list[tuple[str, list[str]]]:
    """Each backticked ``.py`` path of a page with the backticked names that follow it (after ``:`` or ``(``)."""
    refs = []
    for m in CODE_PATH.finditer(text):
        names = CODE_NAMES.match(text[m.end() :])
        refs.append((m.group(1), re.findall(r"`([\w.]+)`", names.group(1)) if names else []))
    return refs


def defined_names(path: Path) -> dict[str, set[str]]:
    """The top-level functions, classes and assigned names of a module, each with its class body's names."""
    found: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members = {
                getattr(n, "name", None) or getattr(getattr(n, "target", None), "id", "")
                for n in getattr(node, "body", [])
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.AnnAssign)
            }
            found[node.name] = members
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update({t.id: set() for t in targets if isinstance(t, ast.Name)})
    return found


def unresolved(text: str) -> list[str]:
    """The code references of a method page whose file (under ``src/occseg/``, or the repository root for
    ``benchmarks/``, ``tests/`` and ``src/``) or named function / class (``Class.member`` too) does not exist."""
    bad = []
    for rel, names in code_references(text):
        top = rel.split("/")[0]
        path = ROOT / rel if top in ("benchmarks", "tests", "src") else ROOT / "src" / "occseg" / rel
        if not path.is_file():
            bad.append(f"{rel}: no such file")
            continue
        defined = defined_names(path)
        for name in names:
            owner, _, member = name.partition(".")
            if owner not in defined or (member and member not in defined[owner]):
                bad.append(f"{rel}: {name} is not defined there")
    return bad


def test_code_references_find_their_names():
    text = "in `a/b.py`: `f`, `G.h` and `k`; see `c.py` (`x`) and `d.py` alone; `e.py`: the rest"
    assert code_references(text) == [("a/b.py", ["f", "G.h", "k"]), ("c.py", ["x"]), ("d.py", []), ("e.py", [])]


def test_unresolved_names_a_missing_function_and_file():
    bad = unresolved("`compnet/learn.py`: `train_compnet`, `no_such_step`, `TrainConfig.context`; `nowhere/x.py`")
    assert bad == ["compnet/learn.py: no_such_step is not defined there", "nowhere/x.py: no such file"]


def test_method_code_references_resolve():
    _tracked_files()
    method = ROOT / "docs" / "method.md"
    if not method.exists():
        pytest.skip("docs/method.md is absent")
    text = method.read_text(encoding="utf-8")
    assert code_references(text), "docs/method.md cites no module: the citation style changed?"
    bad = unresolved(text)
    assert not bad, "docs/method.md names code that is not there:\n" + "\n".join(bad)


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

"""Every document the project points at is in the repository.

What counts as a reference, in the project's .py, .md and .toml files:

- in Markdown, a relative link `[text](target)` or `[text](target#anchor)` (any kind of file:
  an image, a document, a source file), resolved against the linking file's folder;
- anywhere, a name that ends in `.md` and either has a folder in it (`docs/measurements.md`,
  `../notes/x.md`) or is written in capitals (`README.md`, `DESIGN.md`: how a project names its
  documents), resolved against the repository root and then the citing file's folder. A
  lower-case bare name (`notes.md`) is a file name in data, as a test's scratch file, not a
  citation.

In the test suite's .py files only comments and docstrings are read: their string literals are
data (`diff --git a/notes.md b/notes.md`), not citations. A reference with `#anchor` must also
name a heading of the target, as GitHub makes anchors of headings. The small repositories under bench/tasks/ are data the agent is tried on, with their
own files; they are not scanned. Nor is this file, whose tests name missing files on purpose.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCANNED_SUFFIXES = (".py", ".md", ".toml")
SKIPPED_DIRS = {".git", ".venv", "venv", "build", "dist", "node_modules", "__pycache__",
                ".pytest_cache", ".ruff_cache", ".turnout"}
NOT_SCANNED = ("bench/tasks/", "tests/test_docs_links.py")

_MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_MD_NAME = re.compile(r"(?<![\w./-])((?:\.{1,2}/|[\w.-]+/)*[\w.-]+\.md)(#[\w-]+)?(?![\w/-])")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def project_files(root: Path) -> list[Path]:
    """The files the scan reads: the scanned kinds, outside the skipped folders."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.suffix in SCANNED_SUFFIXES and not rel.startswith(NOT_SCANNED):
                found.append(path)
    return found


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (those outside code fences)."""
    out: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def prose_of_python(text: str) -> str:
    """The source with everything but its comments and docstrings blanked, lines kept in place."""
    lines = [""] * (text.count("\n") + 1)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            lines[token.start[0] - 1] += token.string
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                source = text.splitlines()
                for number in range(first.lineno, (first.end_lineno or first.lineno) + 1):
                    lines[number - 1] += " " + source[number - 1]
    return "\n".join(lines)


def references(path: Path, text: str) -> list[tuple[int, str, bool]]:
    """(line, target, is_link) for every reference in a file's text, as the module docstring
    defines them; a Markdown link resolves against its file's folder only."""
    found: list[tuple[int, str, bool]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if path.suffix == ".md":
            for target in _MARKDOWN_LINK.findall(line):
                if not re.match(r"[a-z][a-z0-9+.-]*:|#", target):  # a URL, or this page
                    found.append((number, target, True))
        for match in _MD_NAME.finditer(line):
            name = match.group(1)
            if "/" in name or re.fullmatch(r"[A-Z][A-Z0-9_-]*\.md", name):
                found.append((number, name + (match.group(2) or ""), False))
    # A link's target is also a name: report it once, as the link.
    links = {(number, target) for number, target, is_link in found if is_link}
    unique = dict.fromkeys(r for r in found if r[2] or (r[0], r[1]) not in links)
    return list(unique)


def broken_references(root: Path) -> list[str]:
    """`file:line: target (why)` for each reference to something the tree does not hold."""
    root = root.resolve()
    problems: list[str] = []
    for path in project_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".py" and rel.startswith("tests/"):
            text = prose_of_python(text)
        for number, target, is_link in references(path, text):
            file_part, _, anchor = target.partition("#")
            bases = [path.parent] if is_link else [root, path.parent]
            candidates = [(base / file_part).resolve() for base in bases]
            hit = next((c for c in candidates if c.exists() and c.is_relative_to(root)), None)
            if hit is None:
                problems.append(f"{rel}:{number}: {target} (no such file in the repository)")
            elif anchor and hit.suffix == ".md" and anchor not in anchors(hit.read_text()):
                problems.append(f"{rel}:{number}: {target} (no heading #{anchor} there)")
    return problems


# --- the tree as it is ----------------------------------------------------------------------


def test_every_reference_in_the_repository_names_a_file_it_holds() -> None:
    assert broken_references(ROOT) == []


def test_the_scan_reads_the_code_and_the_docs() -> None:
    scanned = {p.relative_to(ROOT).as_posix() for p in project_files(ROOT)}
    for rel in ("README.md", "docs/architecture.md", "pyproject.toml", "runtimes/base.py"):
        assert rel in scanned
    assert not any(rel.startswith("bench/tasks/") for rel in scanned)


# --- the checker on a tree made to break it -------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


def test_a_reference_to_a_missing_file_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, {
        "README.md": "See [the design](docs/design.md) and [a picture](docs/flow.png).\n",
        "docs/flow.png": "",
        "docs/notes.md": "# Notes\n\n## Batch cost\n\nBack to [the readme](../README.md).\n",
        "pkg/engine.py": (
            '"""Figures from DESIGN.md and docs/notes.md#batch-cost."""\n'
            "# see docs/notes.md#no-such-heading and ../shared/STYLE.md\n"
            'SCRATCH = "notes.md"  # a file name in data, not a citation\n'
        ),
        "pyproject.toml": 'readme = "README.md"\n',
        "tests/test_engine.py": (
            '"""Checks the figures of docs/gone.md."""\n'
            'DIFF = "diff --git a/notes.md b/notes.md"  # data; but see OLD.md\n'
        ),
        "bench/tasks/t/repo/x.py": "# GONE.md\n",  # a task's repository: not scanned
    })
    assert broken_references(tmp_path) == [
        "README.md:1: docs/design.md (no such file in the repository)",
        "pkg/engine.py:1: DESIGN.md (no such file in the repository)",
        "pkg/engine.py:2: docs/notes.md#no-such-heading (no heading #no-such-heading there)",
        "pkg/engine.py:2: ../shared/STYLE.md (no such file in the repository)",
        "tests/test_engine.py:1: docs/gone.md (no such file in the repository)",
        "tests/test_engine.py:2: OLD.md (no such file in the repository)",
    ]


def test_a_reference_outside_the_tree_is_reported_even_when_the_file_exists(
    tmp_path: Path,
) -> None:
    (tmp_path / "OUTSIDE.md").write_text("# Outside\n")
    repo = tmp_path / "repo"
    _write(repo, {"docs/a.md": "Read [this](../../OUTSIDE.md).\n"})
    assert broken_references(repo) == [
        "docs/a.md:1: ../../OUTSIDE.md (no such file in the repository)",
    ]


def test_anchors_follow_githubs_rule_and_skip_code_fences() -> None:
    text = (
        "# Measurements\n## What the 1.5B model does with tools\n## `turnout bench agent`\n"
        "```\n# not a heading\n```\n"
    )
    assert anchors(text) == {
        "measurements", "what-the-15b-model-does-with-tools", "turnout-bench-agent",
    }

"""The README's layout section against the tree: every module listed, every listed name real.

How the section is read (the first code block under `## Layout`):

- A line that starts in the first column with `folder/` begins that top-level folder's entry;
  the indented lines under it continue the entry.
- An indented line that starts with `sub/:` opens the subfolder `folder/sub/`: what follows,
  up to the next such line or the next entry, is about that subfolder.
- In an entry, every `name.py` or `name.md` names a file of the folder being described and
  every other `name/` a folder inside it (`tasks/`, `calc/`).

The granularity: in agent/, tools/, router/, runtimes/ and bench/, every module (each `.py`
file but `__init__.py` and `__main__.py`) is named under its own folder, and every package
folder below them has a `sub/:` line; in docs/, every `.md` file is named. bench/tasks/ holds
the small repositories the agent is tried on, data rather than turnout's modules: it is named
as a folder, its files are not listed. Everything the section names must exist where it says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE_FOLDERS = ("agent", "tools", "router", "runtimes", "bench")
DOC_FOLDERS = ("docs",)
NOT_MODULES = {"__init__.py", "__main__.py"}
DATA_FOLDERS = {"bench/tasks"}

_TOP_LINE = re.compile(r"([\w.-]+)/(?=\s|$)")
_SUB_LINE = re.compile(r"\s+([\w.-]+(?:/[\w.-]+)*)/:")
_FILE = re.compile(r"(?<![\w./-])([\w-]+\.(?:py|md))(?![\w/])")
_FOLDER = re.compile(r"(?<![\w./-])([\w-]+(?:/[\w-]+)*)/(?![\w/])")


@dataclass
class Layout:
    """What the section says: each folder described, and the files and folders named in it."""

    files: dict[str, set[str]] = field(default_factory=dict)  # folder -> file names
    folders: set[str] = field(default_factory=set)  # every folder described or named


def layout_block(readme: str) -> str:
    """The first code block after the `## Layout` heading."""
    section = readme.split("\n## Layout\n", 1)
    assert len(section) == 2, "README.md has no `## Layout` section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section[1], re.MULTILINE | re.DOTALL)
    assert block, "the README's `## Layout` section has no code block"
    return block.group(1)


def parse_layout(block: str) -> Layout:
    """Read the block as the module docstring says."""
    layout = Layout()
    current: str | None = None
    top: str | None = None
    for line in block.splitlines():
        if not line.strip():
            continue
        text = line
        if not line[0].isspace():
            top_match = _TOP_LINE.match(line)
            assert top_match, f"a layout entry starts with its folder: {line!r}"
            top = current = top_match.group(1)
            text = line[top_match.end():]
        elif (sub := _SUB_LINE.match(line)) is not None:
            assert top is not None, f"a subfolder line before any entry: {line!r}"
            current = f"{top}/{sub.group(1)}"
            text = line[sub.end():]
        assert current is not None, f"text before the first entry: {line!r}"
        layout.folders.add(current)
        layout.files.setdefault(current, set())
        without_files = _FILE.sub(" ", text)
        layout.files[current].update(_FILE.findall(text))
        layout.folders.update(f"{current}/{name}" for name in _FOLDER.findall(without_files))
    return layout


def layout_problems(root: Path, layout: Layout) -> list[str]:
    """What the layout leaves out of the tree, and what it names that the tree does not hold."""
    problems: list[str] = []
    for folder in sorted(layout.folders):
        if not (root / folder).is_dir():
            problems.append(f"{folder}/ is in the layout but not in the tree")
    for folder, names in sorted(layout.files.items()):
        for name in sorted(names):
            if not (root / folder / name).is_file():
                problems.append(f"{folder}/{name} is in the layout but not in the tree")
    for top in CODE_FOLDERS + DOC_FOLDERS:
        pattern = "*.py" if top in CODE_FOLDERS else "*.md"
        for path in sorted((root / top).rglob(pattern)):
            rel = path.relative_to(root)
            folder = rel.parent.as_posix()
            if path.name in NOT_MODULES or any(
                folder == data or folder.startswith(data + "/") for data in DATA_FOLDERS
            ):
                continue
            if folder not in layout.files:
                problems.append(f"{folder}/ ({rel.as_posix()}) has no entry in the layout")
            elif path.name not in layout.files[folder]:
                problems.append(f"{rel.as_posix()} is not in the layout under {folder}/")
    return sorted(set(problems))


# --- the README as it is ----------------------------------------------------------------------


def test_the_readme_layout_matches_the_tree() -> None:
    layout = parse_layout(layout_block((ROOT / "README.md").read_text(encoding="utf-8")))
    assert layout_problems(ROOT, layout) == []


def test_the_layout_is_read_folder_by_folder() -> None:
    layout = parse_layout(layout_block((ROOT / "README.md").read_text(encoding="utf-8")))
    # The same name in two folders is two modules, each checked where it lives.
    assert "run.py" in layout.files["agent"] and "run.py" in layout.files["agent/cli"]
    assert "llama_cpp.py" in layout.files["runtimes/local"]
    assert "llama_cpp.py" not in layout.files["runtimes"]
    assert "bench/tasks" in layout.folders


# --- the checker on a tree made to break it ---------------------------------------------------


BLOCK = """\
runtimes/   base.py: the vocabulary
            local/: engine.py (the decode loop)
agent/      loop.py, run.py
            cli/: main.py, run.py
bench/      agent.py over tasks/
docs/       architecture.md
"""


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")


def test_a_tree_that_matches_its_layout_has_no_problems(tmp_path: Path) -> None:
    _tree(tmp_path, [
        "runtimes/__init__.py", "runtimes/base.py", "runtimes/local/engine.py",
        "agent/loop.py", "agent/run.py", "agent/cli/__main__.py", "agent/cli/main.py",
        "agent/cli/run.py", "bench/agent.py", "bench/tasks/t/repo/x.py",
        "docs/architecture.md",
    ])
    assert layout_problems(tmp_path, parse_layout(BLOCK)) == []


def test_unlisted_misplaced_and_missing_files_are_reported(tmp_path: Path) -> None:
    _tree(tmp_path, [
        "runtimes/base.py",
        "runtimes/engine.py",  # misplaced: the layout has it in runtimes/local/
        "runtimes/remote/wire.py",  # a package the layout has no line for
        "agent/loop.py", "agent/run.py", "agent/cli/main.py",  # agent/cli/run.py is missing
        "agent/undo.py",  # a module nobody listed
        "bench/agent.py",  # bench/tasks/ is missing
        "docs/architecture.md", "docs/measurements.md",
    ])
    assert layout_problems(tmp_path, parse_layout(BLOCK)) == [
        "agent/cli/run.py is in the layout but not in the tree",
        "agent/undo.py is not in the layout under agent/",
        "bench/tasks/ is in the layout but not in the tree",
        "docs/measurements.md is not in the layout under docs/",
        "runtimes/engine.py is not in the layout under runtimes/",
        "runtimes/local/ is in the layout but not in the tree",
        "runtimes/local/engine.py is in the layout but not in the tree",
        "runtimes/remote/ (runtimes/remote/wire.py) has no entry in the layout",
    ]

"""Which folder may import which: the rule, and the checker that enforces it.

Every module of every package pyproject.toml lists is parsed with `ast`; every import counts,
at module level and inside functions alike (an import inside a function is still a dependency,
only a later one). Relative imports are resolved against the importing module's package.

The rule, from the bottom up:

- `tools/` imports only the standard library, `mcp` and `tools/` itself: it is a set of
  standalone MCP servers, each runnable under any MCP client. One file is not a server module
  but a script a server runs in the project's own Python: `tools/trace_runner.py`, run by the
  tests server inside the project's test process, may import that process's `pytest`, and no
  module may import it.
- `runtimes/` imports nothing from `agent/`, `router/` or `bench/`. Inside it:
  `runtimes/base.py` (the vocabulary and the seams) and `runtimes/errors.py` (the error tree)
  import nothing of turnout but each other; `runtimes/textprotocol/` (the text tool protocol:
  render, parse, constrain) imports only those two; and the rooms `runtimes/local/` (the
  in-process engine), `runtimes/remote/` (the networked runtimes) and `runtimes/testing/` (the
  test doubles) may use `base`, `errors` and `textprotocol`, never one another.
- `router/` imports nothing from `agent/` or `bench/`.
- `agent/` imports nothing from `bench/`, except the one command-line module that wires the
  `turnout bench` command (a module of `agent/cli`). The dependency goes `bench/` -> `agent/`:
  the benchmarks drive the agent; the agent's domain code never reads a benchmark.
- `bench/` may import everything.

And no import cycle between modules: a module never imports, directly or through others, a
module that imports it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Third-party packages tools/ may import besides the standard library.
TOOLS_MAY_IMPORT = {"mcp"}
# Scripts in tools/ that a server runs by path in the project's own Python, never imported,
# and what they may import there besides the standard library.
TOOLS_SCRIPTS = {"turnout.tools.trace_runner": {"pytest"}, "turnout.tools.variant_runner": {"pytest"}}
# Inside runtimes/: which parts a part may import (a part is base, errors, a room's folder).
RUNTIMES_VOCABULARY = {"turnout.runtimes.base", "turnout.runtimes.errors"}
RUNTIMES_ROOMS = ("turnout.runtimes.local", "turnout.runtimes.remote", "turnout.runtimes.testing")
RUNTIMES_PROTOCOL = "turnout.runtimes.textprotocol"
# Where agent/ may reach into bench/: the command-line module of `turnout bench`.
BENCH_WIRING_PREFIX = "turnout.agent.cli"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports: a module of ours, or the top-level name of another package
    line: int
    ours: bool  # whether `target` is one of the scanned modules


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """The packages pyproject.toml installs, by name, and the folder each comes from."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = config.get("package-dir", {})

    def folder(name: str) -> Path:
        # As setuptools does: the nearest enclosing package named in package-dir, then the rest.
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            mapped = dirs.get(".".join(parts[:end]))
            if mapped is not None:
                return root.joinpath(mapped, *parts[end:])
        return root.joinpath(*parts)

    return {name: folder(name) for name in config["packages"]}


def module_files(packages: Mapping[str, Path]) -> dict[str, Path]:
    """Every module of the packages: `__init__.py` is the package, `x.py` is `package.x`."""
    found: dict[str, Path] = {}
    for package, folder in packages.items():
        for path in sorted(folder.glob("*.py")):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def imports_of(module: str, path: Path, known: Iterable[str]) -> list[Import]:
    """Every import in the module's source, at any depth, resolved to our modules where it can."""
    known = set(known)
    is_package = path.stem == "__init__"
    package = module if is_package else module.rpartition(".")[0]
    out: list[Import] = []

    def add(name: str, line: int) -> None:
        # The longest prefix of `name` that is one of our modules; else another package.
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                out.append(Import(module, candidate, line, ours=True))
                return
        out.append(Import(module, parts[0], line, ours=False))

    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # `from pkg import mod` imports the module `pkg.mod` where there is one.
                submodule = f"{source}.{alias.name}"
                add(submodule if submodule in known else source, node.lineno)
    return out


def all_imports(packages: Mapping[str, Path]) -> list[Import]:
    files = module_files(packages)
    return [imp for module, path in files.items() for imp in imports_of(module, path, files)]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _runtimes_part(module: str) -> str:
    """base, errors, textprotocol, a room, or another module directly in runtimes/."""
    for part in (*RUNTIMES_ROOMS, RUNTIMES_PROTOCOL):
        if _within(module, part):
            return part
    return module


def violations(imports: Iterable[Import]) -> list[str]:
    """Every import that breaks the folder rule of this module's docstring."""
    stdlib = set(sys.stdlib_module_names)
    found: list[str] = []
    bench_wiring: set[str] = set()
    for imp in imports:
        where = f"{imp.module} (line {imp.line}) imports {imp.target}"
        if imp.ours and imp.target in TOOLS_SCRIPTS:
            found.append(f"{where}: {imp.target} is a script run by path, never imported")
        if _within(imp.module, "turnout.tools"):
            allowed = _within(imp.target, "turnout.tools") if imp.ours else (
                imp.target in stdlib or imp.target in TOOLS_MAY_IMPORT
                or imp.target in TOOLS_SCRIPTS.get(imp.module, set())
            )
            if not allowed:
                found.append(f"{where}: tools/ imports only the standard library, mcp and tools/")
            continue
        if not imp.ours:
            continue
        if _within(imp.module, "turnout.runtimes"):
            for other in ("turnout.agent", "turnout.router", "turnout.bench"):
                if _within(imp.target, other):
                    found.append(f"{where}: runtimes/ imports nothing from {other[8:]}/")
            if _within(imp.target, "turnout.runtimes"):
                problem = _runtimes_problem(imp.module, imp.target)
                if problem:
                    found.append(f"{where}: {problem}")
        elif _within(imp.module, "turnout.router"):
            for other in ("turnout.agent", "turnout.bench"):
                if _within(imp.target, other):
                    found.append(f"{where}: router/ imports nothing from {other[8:]}/")
        elif _within(imp.module, "turnout.agent") and _within(imp.target, "turnout.bench"):
            if _within(imp.module, BENCH_WIRING_PREFIX):
                bench_wiring.add(imp.module)
            else:
                found.append(
                    f"{where}: agent/ imports nothing from bench/ (only the `turnout bench` "
                    "command's module in agent/cli may)"
                )
    if len(bench_wiring) > 1:
        found.append(
            f"agent/ reaches into bench/ from {len(bench_wiring)} modules "
            f"({', '.join(sorted(bench_wiring))}): one module wires `turnout bench`"
        )
    return sorted(found)


def _runtimes_problem(module: str, target: str) -> str:
    source, dest = _runtimes_part(module), _runtimes_part(target)
    if source == dest:
        return ""
    if source in RUNTIMES_VOCABULARY:
        if dest not in RUNTIMES_VOCABULARY:
            return "runtimes/base.py and runtimes/errors.py import nothing of turnout but each other"
        return ""
    if source == RUNTIMES_PROTOCOL:
        if dest not in RUNTIMES_VOCABULARY:
            return "runtimes/textprotocol/ imports only runtimes/base.py and runtimes/errors.py"
        return ""
    if source in RUNTIMES_ROOMS and dest in RUNTIMES_ROOMS:
        return f"runtimes/{source.rpartition('.')[2]}/ does not import another room ({dest})"
    return ""


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """The import cycles between our modules: each strongly connected group of two or more
    modules (or a module importing itself), members sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set())
        if imp.ours:
            graph[imp.module].add(imp.target)
            graph.setdefault(imp.target, set())
    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph[node]:
                    groups.append(sorted(group))
    return sorted(groups)


def folder_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Cycles between the top-level folders, the `turnout bench` wiring left out (it is the one
    edge from agent/ to bench/ the rule allows, and the composition of the two)."""
    tops = [
        Import(_top(i.module), _top(i.target), i.line, ours=True)
        for i in imports
        if i.ours and _top(i.module) != _top(i.target)
        and not (_within(i.module, BENCH_WIRING_PREFIX) and _within(i.target, "turnout.bench"))
    ]
    return cycles(tops)


def _top(module: str) -> str:
    return ".".join(module.split(".")[:2])


# --- the tree as it is ----------------------------------------------------------------------


def test_every_package_folder_is_installed() -> None:
    """A folder of modules under a top-level folder that pyproject.toml does not list would be
    missing from a wheel (the editable install would hide it)."""
    packages = package_dirs()
    listed = {path.resolve() for path in packages.values()}
    for name in ("agent", "router", "runtimes", "tools", "bench"):
        for init in (ROOT / name).rglob("__init__.py"):
            folder = init.parent.resolve()
            if "tasks" in folder.relative_to(ROOT).parts:
                continue  # bench/tasks: small repositories the agent is tried on, not turnout
            assert folder in listed, f"{folder.relative_to(ROOT)} is not in pyproject's packages"


def test_the_tree_keeps_the_import_rule() -> None:
    assert violations(all_imports(package_dirs())) == []


def test_no_import_cycles_between_modules() -> None:
    assert cycles(all_imports(package_dirs())) == []


def test_no_import_cycles_between_folders() -> None:
    assert folder_cycles(all_imports(package_dirs())) == []


def test_the_checker_sees_every_module() -> None:
    files = module_files(package_dirs())
    for name in ("turnout.runtimes.base", "turnout.router.router", "turnout.tools.files"):
        assert name in files
    assert not any(".tasks." in name for name in files)


# --- the checker on trees made to break it --------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, source in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    folders = sorted({path.parent for path in tmp_path.rglob("*.py")})
    return {
        "turnout." + ".".join(folder.relative_to(tmp_path).parts): folder for folder in folders
    }


def test_a_misplaced_import_is_reported(tmp_path: Path) -> None:
    packages = _tree(tmp_path, {
        "runtimes/__init__.py": "",
        "runtimes/base.py": "import json\n",
        "runtimes/local/__init__.py": "",
        "runtimes/local/engine.py": (
            "from turnout.runtimes.base import X\n"
            "def helper():\n"
            "    from turnout.agent.loop import run  # the runtime climbing up into the agent\n"
        ),
        "agent/__init__.py": "",
        "agent/loop.py": "from turnout.runtimes.local import engine\n",
    })
    found = violations(all_imports(packages))
    assert found == [
        ("turnout.runtimes.local.engine (line 3) imports turnout.agent.loop: "
         "runtimes/ imports nothing from agent/")
    ]


def test_each_forbidden_direction_is_reported(tmp_path: Path) -> None:
    packages = _tree(tmp_path, {
        "tools/__init__.py": "",
        "tools/files.py": "import os\nimport mcp\nimport pydantic\nfrom . import _common\n",
        "tools/_common.py": "from turnout.runtimes import base\n",
        "tools/trace_runner.py": "def main():\n    import pytest\n",
        "tools/tests.py": "import subprocess\nfrom turnout.tools import trace_runner\n",
        "runtimes/__init__.py": "",
        "runtimes/base.py": "from turnout.runtimes.textprotocol import parse\n",
        "runtimes/errors.py": "",
        "runtimes/textprotocol/__init__.py": "",
        "runtimes/textprotocol/parse.py": "from ..local import engine\n",
        "runtimes/local/__init__.py": "",
        "runtimes/local/engine.py": "from turnout.runtimes.remote.wire import x\n",
        "runtimes/remote/__init__.py": "",
        "runtimes/remote/wire.py": "from turnout.runtimes import errors, base\n",
        "router/__init__.py": "",
        "router/router.py": "import turnout.bench.speculative\n",
        "agent/__init__.py": "",
        "agent/run.py": "def f():\n    from turnout.bench import agent\n",
        "agent/cli/__init__.py": "",
        "agent/cli/bench.py": "from turnout.bench.speculative import run_cli\n",
        "bench/__init__.py": "",
        "bench/agent.py": "from turnout.agent import run\n",
        "bench/speculative.py": "from turnout.agent.cli import bench\n",
    })
    found = violations(all_imports(packages))
    assert found == sorted([
        ("turnout.tools.files (line 3) imports pydantic: "
         "tools/ imports only the standard library, mcp and tools/"),
        ("turnout.tools._common (line 1) imports turnout.runtimes.base: "
         "tools/ imports only the standard library, mcp and tools/"),
        ("turnout.tools.tests (line 2) imports turnout.tools.trace_runner: "
         "turnout.tools.trace_runner is a script run by path, never imported"),
        ("turnout.runtimes.base (line 1) imports turnout.runtimes.textprotocol.parse: "
         "runtimes/base.py and runtimes/errors.py import nothing of turnout but each other"),
        ("turnout.runtimes.textprotocol.parse (line 1) imports turnout.runtimes.local.engine: "
         "runtimes/textprotocol/ imports only runtimes/base.py and runtimes/errors.py"),
        ("turnout.runtimes.local.engine (line 1) imports turnout.runtimes.remote.wire: "
         "runtimes/local/ does not import another room (turnout.runtimes.remote)"),
        ("turnout.router.router (line 1) imports turnout.bench.speculative: "
         "router/ imports nothing from bench/"),
        ("turnout.agent.run (line 2) imports turnout.bench.agent: agent/ imports nothing from "
         "bench/ (only the `turnout bench` command's module in agent/cli may)"),
    ])


def test_a_second_module_wiring_bench_is_reported(tmp_path: Path) -> None:
    packages = _tree(tmp_path, {
        "agent/__init__.py": "",
        "agent/cli/__init__.py": "from turnout.bench import agent\n",
        "agent/cli/bench.py": "from turnout.bench.speculative import run_cli\n",
        "bench/__init__.py": "",
        "bench/agent.py": "",
        "bench/speculative.py": "",
    })
    assert violations(all_imports(packages)) == [
        ("agent/ reaches into bench/ from 2 modules (turnout.agent.cli, turnout.agent.cli.bench): "
         "one module wires `turnout bench`")
    ]


def test_cycles_are_reported_between_modules_and_between_folders(tmp_path: Path) -> None:
    packages = _tree(tmp_path, {
        "runtimes/__init__.py": "",
        "runtimes/local/__init__.py": "",
        "runtimes/local/drafters.py": (
            "def make():\n    from turnout.runtimes.local.speculative import Decoder\n"
        ),
        "runtimes/local/speculative.py": "from turnout.runtimes.local.drafters import make\n",
        "router/__init__.py": "",
        "router/policy.py": "from turnout.agent import paths\n",
        "agent/__init__.py": "",
        "agent/paths.py": "",
        "agent/run.py": "from turnout.router import policy\n",
        "agent/cli.py": "from turnout.bench import agent\n",
        "bench/__init__.py": "",
        "bench/agent.py": "from turnout.agent import run\n",
    })
    imports = all_imports(packages)
    assert cycles(imports) == [
        ["turnout.runtimes.local.drafters", "turnout.runtimes.local.speculative"]
    ]
    # router -> agent -> router; the agent -> bench -> agent loop through the bench wiring is
    # the one the rule allows.
    assert folder_cycles(imports) == [["turnout.agent", "turnout.router"]]

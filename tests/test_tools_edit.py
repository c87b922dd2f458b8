"""The "edit" MCP server, run as a real subprocess and driven over stdio by the mcp Client.

One server serves the whole module (starting one costs about a second of imports); each test
works in its own folder under the shared root. Beside the root lies `repo_evil`, a sibling
whose name starts with the root's, to catch prefix comparisons of paths.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

pytestmark = pytest.mark.anyio

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("edit")
    (base / "repo").mkdir()
    (base / "repo_evil").mkdir()
    return base / "repo"


@pytest.fixture(scope="module")
async def client(root: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "turnout.tools.edit", "--root", str(root)]
    )
    async with Client(params) as connected:
        yield connected


@pytest.fixture
def work(root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh folder under the server's root, named after the test."""
    folder = root / re.sub(r"\W", "_", request.node.name)
    folder.mkdir()
    return folder


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def call_ok(client: Client, tool: str, **arguments: object) -> str:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    return text_of(result)


async def call_error(client: Client, tool: str, **arguments: object) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, text_of(result)
    return text_of(result)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: temp files left behind would show up too."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


async def test_the_server_offers_replace_write_and_patch_with_input_schemas(
    client: Client,
) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"replace_in_file", "write_file", "apply_patch"}
    replace_schema = tools["replace_in_file"].input_schema
    assert set(replace_schema["properties"]) == {"path", "old", "new", "dry_run"}
    assert sorted(replace_schema["required"]) == ["new", "old", "path"]
    assert sorted(tools["write_file"].input_schema["required"]) == ["content", "path"]
    assert tools["apply_patch"].input_schema["required"] == ["patch"]


async def test_replace_in_file_changes_the_one_occurrence_and_returns_the_diff(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text(CALC)
    rel = f"{work.name}/calc.py"
    diff = await call_ok(
        client,
        "replace_in_file",
        path=rel,
        old="def add(a, b):\n    return a - b",
        new="def add(a, b):\n    return a + b",
    )
    assert (work / "calc.py").read_text() == CALC.replace("a - b", "a + b", 1)
    assert f"--- a/{rel}\n+++ b/{rel}\n" in diff
    assert "\n-    return a - b\n+    return a + b\n" in diff
    assert snapshot(work).keys() == {"calc.py"}


async def test_replace_in_file_with_absent_text_fails_with_a_hint_of_the_closest_line(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text(CALC)
    error = await call_error(
        client, "replace_in_file", path=f"{work.name}/calc.py", old="return a-b", new="x"
    )
    assert "not found" in error
    assert "from line 2:\n    return a - b" in error
    assert (work / "calc.py").read_text() == CALC


async def test_replace_in_file_with_ambiguous_text_says_how_often_it_occurs(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text(CALC)
    error = await call_error(
        client,
        "replace_in_file",
        path=f"{work.name}/calc.py",
        old="return a - b",
        new="return a + b",
    )
    assert "occurs 2 times" in error
    assert "lines 2, 6" in error
    assert "more surrounding lines" in error
    assert (work / "calc.py").read_text() == CALC


async def test_write_file_creates_parents_and_keeps_the_mode_of_an_existing_file(
    client: Client, work: Path
) -> None:
    created = await call_ok(
        client, "write_file", path=f"{work.name}/pkg/sub/new.py", content="x = 1\n"
    )
    assert (work / "pkg" / "sub" / "new.py").read_text() == "x = 1\n"
    assert created.startswith(f"--- /dev/null\n+++ b/{work.name}/pkg/sub/new.py\n")

    script = work / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o754)
    changed = await call_ok(client, "write_file", path=f"{work.name}/run.sh", content="echo new\n")
    assert script.read_text() == "echo new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o754
    assert "-echo old\n+echo new\n" in changed
    assert snapshot(work).keys() == {"pkg/sub/new.py", "run.sh"}


async def test_dry_run_returns_the_diff_and_writes_nothing(client: Client, work: Path) -> None:
    (work / "calc.py").write_text(CALC)
    before = snapshot(work)
    rel = f"{work.name}/calc.py"

    replaced = await call_ok(
        client, "replace_in_file", path=rel, old="a - b\n\n", new="a + b\n\n", dry_run=True
    )
    written = await call_ok(
        client, "write_file", path=f"{work.name}/new/file.txt", content="hi\n", dry_run=True
    )
    patch = f"--- a/{rel}\n+++ b/{rel}\n@@ -5,2 +5,2 @@\n def sub(a, b):\n-    return a - b\n+    return 0\n"
    patched = await call_ok(client, "apply_patch", patch=patch, dry_run=True)

    for diff in (replaced, written, patched):
        assert diff.endswith("(dry run, nothing written)")
        assert "\n+" in diff
    assert snapshot(work) == before
    assert not (work / "new").exists()


async def test_apply_patch_edits_and_creates_files(client: Client, work: Path) -> None:
    (work / "calc.py").write_text(CALC)
    rel = f"{work.name}/calc.py"
    patch = (
        f"diff --git a/{rel} b/{rel}\n"
        f"--- a/{rel}\n"
        f"+++ b/{rel}\n"
        "@@ -1,2 +1,2 @@\n"
        " def add(a, b):\n"
        "-    return a - b\n"
        "+    return a + b\n"
        "@@ -5,2 +5,3 @@\n"
        " def sub(a, b):\n"
        "+    # subtraction really subtracts\n"
        "     return a - b\n"
        "--- /dev/null\n"
        f"+++ b/{work.name}/tests/test_calc.py\n"
        "@@ -0,0 +1,2 @@\n"
        "+def test_add():\n"
        "+    assert add(2, 3) == 5\n"
    )
    diff = await call_ok(client, "apply_patch", patch=patch)
    assert (work / "calc.py").read_text() == (
        "def add(a, b):\n    return a + b\n\n\n"
        "def sub(a, b):\n    # subtraction really subtracts\n    return a - b\n"
    )
    assert (work / "tests" / "test_calc.py").read_text() == (
        "def test_add():\n    assert add(2, 3) == 5\n"
    )
    assert f"+++ b/{rel}" in diff
    assert f"+++ b/{work.name}/tests/test_calc.py" in diff
    assert snapshot(work).keys() == {"calc.py", "tests/test_calc.py"}


async def test_apply_patch_finds_hunks_by_context_despite_wrong_line_numbers(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text("# header\n" * 30 + CALC)
    rel = f"{work.name}/calc.py"
    patch = (
        f"--- {rel}\n+++ {rel}\n"
        "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
        "@@ -90,2 +90,2 @@\n def sub(a, b):\n-    return a - b\n+    return a - b  # ok\n"
    )
    await call_ok(client, "apply_patch", patch=patch)
    assert (work / "calc.py").read_text() == "# header\n" * 30 + (
        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b  # ok\n"
    )


async def test_apply_patch_with_a_failing_hunk_writes_no_file_at_all(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text(CALC)
    (work / "other.py").write_text("value = 1\n")
    before = snapshot(work)
    patch = (
        f"--- a/{work.name}/calc.py\n+++ b/{work.name}/calc.py\n"
        "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
        f"--- a/{work.name}/other.py\n+++ b/{work.name}/other.py\n"
        "@@ -1 +1 @@\n-value = 2\n+value = 3\n"
    )
    error = await call_error(client, "apply_patch", patch=patch)
    assert f"hunk 1 of {work.name}/other.py" in error
    assert "Expected these lines near line 1:\nvalue = 2" in error
    assert "Nothing was written" in error
    assert snapshot(work) == before


async def test_an_edit_outside_the_root_is_refused_and_writes_nothing(
    client: Client, root: Path
) -> None:
    outside = root.parent
    evil = outside / "repo_evil"
    (outside / "victim.txt").write_text("original\n")
    attempts: list[tuple[str, dict[str, object]]] = [
        ("write_file", {"path": "../outside.txt", "content": "pwned\n"}),
        ("write_file", {"path": str(outside / "outside.txt"), "content": "pwned\n"}),
        ("write_file", {"path": str(evil / "x.txt"), "content": "pwned\n"}),
        ("write_file", {"path": "../repo_evil/x.txt", "content": "pwned\n"}),
        ("replace_in_file", {"path": "../victim.txt", "old": "original", "new": "pwned"}),
        (
            "apply_patch",
            {"patch": "--- a/../victim.txt\n+++ b/../victim.txt\n@@ -1 +1 @@\n-original\n+pwned\n"},
        ),
        (
            "apply_patch",
            {"patch": f"--- /dev/null\n+++ {evil}/new.txt\n@@ -0,0 +1 @@\n+pwned\n"},
        ),
    ]
    for tool, arguments in attempts:
        error = await call_error(client, tool, **arguments)
        assert "outside the repository root" in error, (tool, arguments)
        assert "give a path" in error
    assert not (outside / "outside.txt").exists()
    assert list(evil.iterdir()) == []
    assert (outside / "victim.txt").read_text() == "original\n"


async def test_an_edit_through_a_symlink_that_leaves_the_root_is_refused(
    client: Client, root: Path, work: Path
) -> None:
    target = root.parent / f"{work.name}_target"
    target.mkdir()
    (target / "victim.txt").write_text("original\n")
    (work / "linkdir").symlink_to(target, target_is_directory=True)
    (work / "linkfile").symlink_to(target / "victim.txt")
    (work / "dangling").symlink_to(target / "created.txt")
    prefix = work.name

    for tool, arguments in [
        ("write_file", {"path": f"{prefix}/linkdir/new.txt", "content": "pwned\n"}),
        ("write_file", {"path": f"{prefix}/linkdir/victim.txt", "content": "pwned\n"}),
        ("write_file", {"path": f"{prefix}/dangling", "content": "pwned\n"}),
        ("replace_in_file", {"path": f"{prefix}/linkfile", "old": "original", "new": "pwned"}),
    ]:
        error = await call_error(client, tool, **arguments)
        assert "outside the repository root" in error, (tool, arguments)
    assert snapshot(target) == {"victim.txt": b"original\n"}


async def test_a_file_without_a_final_newline_keeps_it_missing_after_a_patch(
    client: Client, work: Path
) -> None:
    (work / "conf.txt").write_bytes(b"a = 1\nb = 2")
    rel = f"{work.name}/conf.txt"
    patch = f"--- a/{rel}\n+++ b/{rel}\n@@ -1,2 +1,2 @@\n-a = 1\n+a = 10\n b = 2\n\\ No newline at end of file\n"
    diff = await call_ok(client, "apply_patch", patch=patch)
    assert (work / "conf.txt").read_bytes() == b"a = 10\nb = 2"
    assert "\\ No newline at end of file" in diff
    assert os.listdir(work) == ["conf.txt"]

"""The "edit" MCP server, run as a real subprocess and driven over stdio by the mcp Client.

One server serves the whole module (starting one costs about a second of imports); each test
works in its own folder under the shared root. Beside the root lies `repo_evil`, a sibling
whose name starts with the root's, to catch prefix comparisons of paths. The forgiving
matcher behind replace_in_file (`find_unique`, `apply_replacement`) is also called in-process.
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
from turnout.tools.edit import EditMismatch, Tier, apply_replacement, find_unique

pytestmark = pytest.mark.anyio

CALC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"

# A method nested two levels deep, for edits whose `old` has the wrong indentation.
NESTED = (
    "class Cart:\n"
    "    def total(self):\n"
    "        if self.items:\n"
    "            return sum(self.items)\n"
    "        return 0\n"
)


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
    assert "from line 2:\n   2 |     return a - b" in error
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


# ----- forgiving replace_in_file ------------------------------------------------------------


def mismatch(text: str, old: str) -> str:
    """The message find_unique refuses `old` with."""
    with pytest.raises(EditMismatch) as raised:
        find_unique(text, old)
    return str(raised.value)


async def test_a_replacement_whose_old_differs_in_indentation_applies(
    client: Client, work: Path
) -> None:
    (work / "cart.py").write_text(NESTED)
    # Shallower than the file: new is indented by the file's extra eight spaces.
    await call_ok(
        client,
        "replace_in_file",
        path=f"{work.name}/cart.py",
        old="if self.items:\n    return sum(self.items)\n",
        new="if self.items:\n    total = sum(self.items)\n    return total\n",
    )
    assert (work / "cart.py").read_text() == NESTED.replace(
        "            return sum(self.items)\n",
        "            total = sum(self.items)\n            return total\n",
    )

    # Deeper than the file: old's extra indentation is removed from every line of new,
    # including a line that closes the block (shallower than old's first line).
    deeper = apply_replacement(
        NESTED,
        "                    return sum(self.items)\n                return 0",
        "                    return sum(self.items)\n            else:\n                return -1",
    )
    assert deeper == (
        "class Cart:\n"
        "    def total(self):\n"
        "        if self.items:\n"
        "            return sum(self.items)\n"
        "    else:\n"
        "        return -1\n"
    )
    assert find_unique(NESTED, "  return 0").tier is Tier.EXACT  # a substring is still exact


def test_an_old_with_every_line_flattened_still_gets_the_file_s_indentation() -> None:
    flattened = apply_replacement(
        NESTED,
        "def total(self):\nif self.items:\nreturn sum(self.items)",
        "def total(self):\nif self.items:\nreturn max(self.items)",
    )
    assert flattened == NESTED.replace("return sum", "return max")


async def test_a_replacement_with_trailing_whitespace_differences_applies(
    client: Client, work: Path
) -> None:
    (work / "conf.py").write_text("a = 1   \nb = 2\t\nc = 3\n")
    await call_ok(
        client,
        "replace_in_file",
        path=f"{work.name}/conf.py",
        old="a = 1\nb = 2\n",
        new="a = 1\nb = 20\n",
    )
    assert (work / "conf.py").read_text() == "a = 1\nb = 20\nc = 3\n"

    match = find_unique("x = 1\ny = 2\n", "x = 1  \ny = 2 ")
    assert match.tier is Tier.TRAILING_WHITESPACE
    assert (match.first_line, match.last_line) == (1, 2)
    assert apply_replacement("x = 1\ny = 2\n", "x = 1  \ny = 2 ", "x = 10") == "x = 10\n"


async def test_a_replacement_with_tabs_in_the_file_and_spaces_in_old_applies(
    client: Client, work: Path
) -> None:
    tabbed = "def total(items):\n\tif items:\n\t\treturn sum(items)\n\treturn 0\n"
    (work / "tabs.py").write_text(tabbed)
    await call_ok(
        client,
        "replace_in_file",
        path=f"{work.name}/tabs.py",
        old="    if items:\n        return sum(items)",
        new="    if items:\n        total = sum(items)\n        return total",
    )
    assert (work / "tabs.py").read_text() == (
        "def total(items):\n\tif items:\n\t\ttotal = sum(items)\n\t\treturn total\n\treturn 0\n"
    )
    # Two-space levels in old map to one tab each, and spaces in the file stay spaces.
    assert apply_replacement(tabbed, "  if items:\n    return sum(items)", "  if x:\n    pass") == (
        "def total(items):\n\tif x:\n\t\tpass\n\treturn 0\n"
    )
    spaced = "def f():\n    if x:\n        return 1\n"
    assert apply_replacement(spaced, "\tif x:\n\t\treturn 1", "\tif x:\n\t\treturn 2") == (
        "def f():\n    if x:\n        return 2\n"
    )


async def test_a_fuzzy_match_with_one_misremembered_line_applies_when_unique(
    client: Client, work: Path
) -> None:
    source = (
        "def checkout(cart):\n"
        "    for item in cart.items:\n"
        "        total = total + item.price\n"
        "        count += 1\n"
        "    return total\n"
    )
    (work / "shop.py").write_text(source)
    result = await call_ok(
        client,
        "replace_in_file",
        path=f"{work.name}/shop.py",
        # The model remembers `item.cost` and drops the indentation.
        old="for item in cart.items:\n    total = total + item.cost\n    count += 1\n",
        new="for item in cart.items:\n    total += item.price\n    count += 1\n",
    )
    assert (work / "shop.py").read_text() == source.replace(
        "total = total + item.price", "total += item.price"
    )
    assert result.startswith("(matched fuzzily, 9")
    assert "similar, at lines 2-4)\n" in result

    match = find_unique(source, "    for item in cart.items:\n        total = total + item.cost")
    assert match.tier is Tier.FUZZY
    assert match.similarity >= 0.9
    assert (match.first_line, match.last_line) == (2, 3)


async def test_a_fuzzy_match_is_refused_when_two_blocks_are_equally_close(
    client: Client, work: Path
) -> None:
    twins = (
        "def load_users():\n    rows = fetch(path)\n    return parse(rows)\n\n\n"
        "def load_orders():\n    rows = fetch(path)\n    return parse(rows)\n"
    )
    (work / "twins.py").write_text(twins)
    error = await call_error(
        client,
        "replace_in_file",
        path=f"{work.name}/twins.py",
        old="rows = fetch(path)\nreturn parse(row)",
        new="rows = fetch(path)\nreturn parse(rows, strict=True)",
    )
    assert "lines 2-3" in error and "lines 7-8" in error
    assert "   2 |     rows = fetch(path)" in error and "   7 |     rows = fetch(path)" in error
    assert "more surrounding lines" in error
    assert (work / "twins.py").read_text() == twins


async def test_a_replacement_that_matches_twice_is_refused_with_both_places(
    client: Client, work: Path
) -> None:
    (work / "calc.py").write_text(CALC)
    rel = f"{work.name}/calc.py"
    exact = await call_error(
        client, "replace_in_file", path=rel, old="    return a - b\n", new="    return 0\n"
    )
    assert "occurs 2 times" in exact and "lines 2, 6" in exact
    assert "   2 |     return a - b" in exact and "   6 |     return a - b" in exact

    # Ignoring indentation it still matches twice: refused, not narrowed down fuzzily.
    loose = await call_error(client, "replace_in_file", path=rel, old="return a - b  ", new="x")
    assert "occurs 2 times" in loose and "ignoring indentation" in loose
    assert "lines 2, 6" in loose and "   6 |     return a - b" in loose
    assert "include more surrounding lines" in loose
    assert (work / "calc.py").read_text() == CALC


async def test_a_miss_quotes_the_closest_lines_with_line_numbers(
    client: Client, work: Path
) -> None:
    source = "import math\n\n\ndef area(r):\n    scaled = r * r\n    return math.pi * scaled\n"
    (work / "geo.py").write_text(source)
    error = await call_error(
        client,
        "replace_in_file",
        path=f"{work.name}/geo.py",
        old="def area(radius):\n    squared = radius ** 2\n    return math.pi * squared\n",
        new="x",
    )
    assert "not found" in error
    match = re.search(r"The closest block, lines 4-6, is (\d+)% similar", error)
    assert match and int(match[1]) < 90, error
    assert "   4 | def area(r):\n   5 |     scaled = r * r\n   6 |     return math.pi" in error
    assert (work / "geo.py").read_text() == source

    message = mismatch(CALC, "return a-b")
    assert "from line 2:\n   2 |     return a - b\n   3 |\n" not in message  # one line only
    assert "from line 2:\n   2 |     return a - b" in message
    assert "from line 6:\n   6 |     return a - b" in message


def test_a_short_old_never_matches_fuzzily() -> None:
    text = "def add(a, b):\n    return a + b\n"
    message = mismatch(text, "retrun a + b")
    assert "not found" in message and "closest block" not in message
    assert "from line 2:\n   2 |     return a + b" in message
    # Long enough, the same slip is forgiven.
    long_text = "def add(first, second):\n    return first + second\n"
    match = find_unique(long_text, "retrun first + second")
    assert match.tier is Tier.FUZZY
    assert (match.first_line, match.last_line) == (2, 2)


async def test_crlf_files_keep_their_line_endings_after_a_forgiving_match(
    client: Client, work: Path
) -> None:
    (work / "win.py").write_bytes(NESTED.replace("\n", "\r\n").encode())
    await call_ok(
        client,
        "replace_in_file",
        path=f"{work.name}/win.py",
        old="if self.items:\n    return sum(self.items)\n",
        new="if self.items:\n    total = sum(self.items)\n    return total\n",
    )
    data = (work / "win.py").read_bytes()
    assert data == (
        b"class Cart:\r\n    def total(self):\r\n        if self.items:\r\n"
        b"            total = sum(self.items)\r\n            return total\r\n"
        b"        return 0\r\n"
    )
    assert data.count(b"\n") == data.count(b"\r\n")
    # Deleting lines matched loosely takes their CRLF endings too.
    assert apply_replacement("a\r\n    b  \r\nc\r\n", "b\n", "") == "a\r\nc\r\n"


async def test_a_loose_match_is_reported_in_the_result(client: Client, work: Path) -> None:
    (work / "cart.py").write_text(NESTED)
    rel = f"{work.name}/cart.py"
    loose = await call_ok(
        client,
        "replace_in_file",
        path=rel,
        old="if self.items:\n    return sum(self.items)",
        new="if self.items:\n    return max(self.items)",
        dry_run=True,
    )
    first, _, diff = loose.partition("\n")
    assert first == "(matched ignoring indentation at lines 3-4)"
    assert diff.startswith(f"--- a/{rel}\n")
    assert diff.endswith("(dry run, nothing written)")
    assert (work / "cart.py").read_text() == NESTED

    exact = await call_ok(client, "replace_in_file", path=rel, old="return 0", new="return -1")
    assert exact.startswith(f"--- a/{rel}\n")
    assert find_unique(NESTED, "return 0   ").note == "(matched ignoring indentation at line 5)"


async def test_a_patch_hunk_with_wrong_indentation_applies(client: Client, work: Path) -> None:
    (work / "cart.py").write_text(NESTED)
    rel = f"{work.name}/cart.py"
    patch = (
        f"--- a/{rel}\n+++ b/{rel}\n"
        "@@ -3,2 +3,3 @@\n"
        " if self.items:\n"
        "-    return sum(self.items)\n"
        "+    total = sum(self.items)\n"
        "+    return total\n"
    )
    result = await call_ok(client, "apply_patch", patch=patch)
    assert (work / "cart.py").read_text() == NESTED.replace(
        "            return sum(self.items)\n",
        "            total = sum(self.items)\n            return total\n",
    )
    assert result.startswith(f"(hunk 1 of {rel} matched ignoring indentation at lines 3-4)\n")


async def test_a_patch_with_a_loosely_matched_hunk_is_still_atomic_when_another_hunk_fails(
    client: Client, work: Path
) -> None:
    (work / "cart.py").write_text(NESTED)
    (work / "calc.py").write_text(CALC)
    before = snapshot(work)
    patch = (
        f"--- a/{work.name}/cart.py\n+++ b/{work.name}/cart.py\n"
        "@@ -3,2 +3,2 @@\n if self.items:\n-    return sum(self.items)\n+    return 1\n"
        f"--- a/{work.name}/calc.py\n+++ b/{work.name}/calc.py\n"
        "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a * b\n+    return a + b\n"
    )
    error = await call_error(client, "apply_patch", patch=patch)
    assert f"hunk 1 of {work.name}/calc.py" in error
    assert "Nothing was written" in error
    assert snapshot(work) == before

    # Ignoring indentation counts only where it finds one place.
    (work / "calc.py").write_text(CALC)
    twice = (
        f"--- a/{work.name}/calc.py\n+++ b/{work.name}/calc.py\n"
        "@@ -2 +2 @@\n-return a - b\n+return a + b\n"
    )
    error = await call_error(client, "apply_patch", patch=twice)
    assert "does not apply" in error
    assert (work / "calc.py").read_text() == CALC

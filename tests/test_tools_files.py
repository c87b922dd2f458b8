"""The "files" MCP server, run as a real subprocess and driven over stdio by the mcp Client.

One server serves the whole module (starting one costs about a second of imports); each test
works in its own folder under the shared root.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files") / "repo"


@pytest.fixture(scope="module")
async def client(root: Path) -> AsyncIterator[Client]:
    root.mkdir()
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "turnout.tools.files", "--root", str(root)]
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


async def test_the_server_offers_read_list_and_search_with_input_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"read_file", "list_files", "search"}
    read_schema = tools["read_file"].input_schema
    assert set(read_schema["properties"]) == {"path", "start_line", "end_line"}
    assert read_schema["required"] == ["path"]
    assert set(tools["list_files"].input_schema["properties"]) == {"path", "pattern"}
    assert tools["search"].input_schema["required"] == ["query"]
    assert all(tool.description for tool in tools.values())


async def test_read_file_returns_the_line_range_verbatim_under_a_header(
    client: Client, work: Path
) -> None:
    lines = [f"    line {n}\n" for n in range(1, 13)]
    (work / "calc.py").write_text("".join(lines))
    rel = f"{work.name}/calc.py"

    whole = await call_ok(client, "read_file", path=rel)
    assert whole == f"# {rel} lines 1-12 of 12\n" + "".join(lines)

    part = await call_ok(client, "read_file", path=rel, start_line=3, end_line=5)
    assert part == f"# {rel} lines 3-5 of 12\n" + "".join(lines[2:5])

    clamped = await call_ok(client, "read_file", path=rel, start_line=11, end_line=99)
    assert clamped == f"# {rel} lines 11-12 of 12\n" + "".join(lines[10:])

    past_end = await call_error(client, "read_file", path=rel, start_line=40)
    assert "has 12 lines" in past_end


async def test_a_long_file_is_truncated_with_a_pointer_to_the_rest(
    client: Client, work: Path
) -> None:
    (work / "big.txt").write_text("".join(f"{n:<99}\n" for n in range(5000)))  # 500 KB
    text = await call_ok(client, "read_file", path=f"{work.name}/big.txt")
    header, body = text.split("\n", 1)
    shown = body.count("\n")
    assert header.startswith(f"# {work.name}/big.txt lines 1-{shown} of 5000")
    assert f"start_line={shown + 1}" in header
    assert 150_000 < len(body) <= 200_000


async def test_a_binary_file_is_refused(client: Client, work: Path) -> None:
    (work / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    error = await call_error(client, "read_file", path=f"{work.name}/image.png")
    assert "binary file, not shown" in error


async def test_non_utf8_text_is_shown_with_replacements_and_the_header_says_so(
    client: Client, work: Path
) -> None:
    (work / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    text = await call_ok(client, "read_file", path=f"{work.name}/latin1.txt")
    header, body = text.split("\n", 1)
    assert "not valid UTF-8" in header
    assert body == "caf\ufffd\n"


async def test_a_read_outside_the_root_is_refused(client: Client, root: Path) -> None:
    (root.parent / "secret.txt").write_text("do not show\n")
    for path in ("../secret.txt", str(root.parent / "secret.txt")):
        error = await call_error(client, "read_file", path=path)
        assert "outside the repository root" in error
        assert "do not show" not in error


async def test_list_files_skips_git_and_environment_folders(client: Client, work: Path) -> None:
    for name in (
        "README.md",
        "src/calc.py",
        "src/deep/util.py",
        ".git/config",
        ".venv/lib/site.py",
        "node_modules/x/index.js",
        "src/__pycache__/calc.cpython-311.pyc",
        ".pytest_cache/v/cache",
    ):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("x\n")
    prefix = work.name

    listed = await call_ok(client, "list_files", path=prefix)
    assert listed.splitlines() == [
        f"{prefix}/README.md",
        f"{prefix}/src/calc.py",
        f"{prefix}/src/deep/util.py",
    ]
    by_name = await call_ok(client, "list_files", path=prefix, pattern="*.py")
    assert by_name.splitlines() == [f"{prefix}/src/calc.py", f"{prefix}/src/deep/util.py"]
    by_path = await call_ok(client, "list_files", path=prefix, pattern="src/*.py")
    assert by_path.splitlines() == [f"{prefix}/src/calc.py"]


async def test_search_reports_path_line_and_text_of_each_match(client: Client, work: Path) -> None:
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n\ndef sub(a, b):\n")
    (work / "notes.md").write_text("add is broken\n")
    (work / "blob.bin").write_bytes(b"\x00def add")
    (work / ".git").mkdir()
    (work / ".git" / "HEAD").write_text("def add\n")
    prefix = work.name

    literal = await call_ok(client, "search", query="def add", path=prefix)
    assert literal.splitlines() == [f"{prefix}/calc.py:1: def add(a, b):"]

    pattern = await call_ok(client, "search", query=r"def \w+\(", path=prefix, regex=True)
    assert pattern.splitlines() == [
        f"{prefix}/calc.py:1: def add(a, b):",
        f"{prefix}/calc.py:4: def sub(a, b):",
    ]
    # Without regex=true the same text is matched literally, and is not there.
    assert "no matches" in await call_ok(client, "search", query=r"def \w+\(", path=prefix)

    bad = await call_error(client, "search", query="def (", path=prefix, regex=True)
    assert "invalid regular expression" in bad

"""Interop both ways: servers no one here wrote, driven through turnout's host; and one set of
protocol checks that every server, ours and theirs, passes under the official `mcp` client.

Third-party servers: `mcp-server-git` (PyPI), `@modelcontextprotocol/server-filesystem` and
`@modelcontextprotocol/server-everything` (npm), installed by `make test`.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from servers import mcp_server_git, server_everything, server_filesystem
from turnout.agent.host import McpHost, ServerSpec, builtin_servers

# MCP's tool-name rule (SEP-986): 1-128 characters from this set.
TOOL_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo, check=True, capture_output=True,
    )


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    git(repo, "add", "calc.py")
    git(repo, "commit", "-q", "-m", "first commit")
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    (repo / "notes.txt").write_text("new\n", encoding="utf-8")
    return repo


def test_mcp_server_git_from_pypi_lists_calls_and_reports_errors_through_the_host(
    git_repo: Path,
) -> None:
    with McpHost([mcp_server_git(git_repo)]) as host:
        names = {tool.name for tool in host.list_tools()}
        assert {"git__git_status", "git__git_diff_unstaged", "git__git_log"} <= names

        status = host.call_tool("git__git_status", {"repo_path": str(git_repo)})
        assert not status.is_error
        assert "calc.py" in status.content and "notes.txt" in status.content

        diff = host.call_tool("git__git_diff_unstaged", {"repo_path": str(git_repo)})
        assert "+    return a + b" in diff.content

        log = host.call_tool("git__git_log", {"repo_path": str(git_repo), "max_count": 5})
        assert "first commit" in log.content

        bad = host.call_tool("git__git_show", {"repo_path": str(git_repo), "revision": "no-such-rev"})
        assert bad.is_error
        assert "no-such-rev" in bad.content


def test_server_filesystem_from_npm_gets_our_roots_and_stays_inside_them(
    tmp_path: Path, git_repo: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not for the model\n", encoding="utf-8")
    # Started on `elsewhere`, the server replaces its directories with the roots the host sends.
    with McpHost([server_filesystem(elsewhere)], roots=[git_repo]) as host:
        names = {tool.name for tool in host.list_tools()}
        assert {"fs__read_text_file", "fs__write_file", "fs__list_allowed_directories"} <= names

        # The server asks for the roots after the handshake and applies them when they arrive.
        for _ in range(100):
            allowed = host.call_tool("fs__list_allowed_directories", {})
            if str(git_repo.resolve()) in allowed.content:
                break
            time.sleep(0.1)
        assert str(git_repo.resolve()) in allowed.content
        assert str(elsewhere) not in allowed.content

        read = host.call_tool("fs__read_text_file", {"path": str(git_repo / "calc.py")})
        assert not read.is_error and "return a + b" in read.content

        written = host.call_tool(
            "fs__write_file", {"path": str(git_repo / "new.txt"), "content": "from npm\n"}
        )
        assert not written.is_error
        assert (git_repo / "new.txt").read_text(encoding="utf-8") == "from npm\n"

        outside = host.call_tool("fs__read_text_file", {"path": str(elsewhere / "secret.txt")})
        assert outside.is_error
        assert "not for the model" not in outside.content


def test_server_everything_from_npm_answers_text_images_and_argument_errors() -> None:
    with McpHost([server_everything()]) as host:
        names = {tool.name for tool in host.list_tools()}
        assert {"everything__echo", "everything__get-sum", "everything__get-tiny-image"} <= names

        assert "hello there" in host.call_tool("everything__echo", {"message": "hello there"}).content
        assert "5" in host.call_tool("everything__get-sum", {"a": 2, "b": 3}).content

        image = host.call_tool("everything__get-tiny-image", {})
        assert not image.is_error
        assert "[image image/png" in image.content

        wrong = host.call_tool("everything__get-sum", {"a": "two", "b": 3})
        assert wrong.is_error


# ----- the same protocol checks for every server ----------------------------------------------


def ours(name: str, root: Path) -> ServerSpec:
    return next(spec for spec in builtin_servers(root, git=True) if spec.name == name)


SERVERS = {
    "turnout files": lambda root: ours("files", root),
    "turnout edit": lambda root: ours("edit", root),
    "turnout tests": lambda root: ours("tests", root),
    "turnout git": lambda root: ours("git", root),
    "mcp-server-git": lambda root: mcp_server_git(root),
    "server-filesystem": lambda root: server_filesystem(root),
    "server-everything": lambda root: server_everything(),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("server", list(SERVERS))
async def test_every_server_passes_the_same_protocol_checks_under_the_official_client(
    server: str, git_repo: Path
) -> None:
    spec = SERVERS[server](git_repo)
    assert spec.command is not None
    params = StdioServerParameters(command=spec.command, args=spec.args, cwd=spec.cwd)
    with (git_repo.parent / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            assert client.server_info is None or client.server_info.name

            listed = await client.list_tools()
            assert listed.tools, "a server must offer at least one tool"
            for tool in listed.tools:
                assert TOOL_NAME.fullmatch(tool.name), tool.name
                assert (tool.description or "").strip(), f"{tool.name} has no description"
                assert tool.input_schema.get("type") == "object", tool.name

            # An unknown tool is an error, either as a result or as a protocol error.
            try:
                unknown = await client.call_tool("no_such_tool_here", {})
                assert unknown.is_error
            except MCPError:
                pass

            # Arguments of the wrong type are refused without taking the server down.
            needs = next((t for t in listed.tools if t.input_schema.get("required")), None)
            if needs is not None:
                wrong = {name: {"not": "valid"} for name in needs.input_schema["required"]}
                try:
                    refused = await client.call_tool(needs.name, wrong)
                    assert refused.is_error
                except MCPError:
                    pass

            again = await client.list_tools()
            assert [t.name for t in again.tools] == [t.name for t in listed.tools]


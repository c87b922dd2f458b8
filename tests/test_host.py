"""The MCP host: `mcpServers` config, namespaced tool names, both transports, start failures,
restart limits and result size limits, against real servers over stdio and HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import MISBEHAVING, misbehaving
from turnout.agent.host import (
    MAX_RESULT_CHARS,
    McpHost,
    ServerSpec,
    builtin_servers,
    exposed_name,
    load_mcp_config,
    own_server,
)
from turnout.runtimes.errors import ToolHostError, UsageError


def write_config(path: Path, servers: dict[str, object]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def test_a_claude_desktop_config_loads_stdio_and_http_servers_with_variables_expanded(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / ".mcp.json",
        {
            "git": {
                "command": "uvx",
                "args": ["mcp-server-git", "--repository", "${REPO}"],
                "env": {"TOKEN": "${TOKEN:-none}"},
                "cwd": "sub",
            },
            "remote": {
                "type": "http",
                "url": "http://${HOST}:8000/mcp",
                "headers": {"Authorization": "Bearer ${TOKEN:-none}"},
                "timeout": 5,
            },
            "off": {"command": "never-run", "disabled": True},
        },
    )
    specs = load_mcp_config(config, environ={"REPO": "/src/app", "HOST": "127.0.0.1"})

    assert [spec.name for spec in specs] == ["git", "remote"]
    git, remote = specs
    assert git.command == "uvx"
    assert git.args == ["mcp-server-git", "--repository", "/src/app"]
    assert git.env == {"TOKEN": "none"}
    assert git.cwd == str((tmp_path / "sub").resolve())
    assert remote.url == "http://127.0.0.1:8000/mcp"
    assert remote.headers == {"Authorization": "Bearer none"}
    assert remote.timeout == 5


def test_a_config_that_uses_an_unset_variable_names_it_and_the_fix(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.json", {"s": {"command": "x", "args": ["${MISSING}"]}})
    with pytest.raises(UsageError, match=r"MISSING.*not set.*MISSING:-default"):
        load_mcp_config(config, environ={})


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ({"s": {"command": "x", "url": "http://h/mcp"}}, "exactly one of 'command'"),
        ({"s": {"args": ["x"]}}, "exactly one of 'command'"),
        ({"bad name": {"command": "x"}}, "may use only letters"),
    ],
)
def test_a_config_entry_that_cannot_work_is_refused_with_the_reason(
    tmp_path: Path, servers: dict[str, object], message: str
) -> None:
    config = write_config(tmp_path / "c.json", servers)
    with pytest.raises(UsageError, match=message):
        load_mcp_config(config, environ={})


def test_an_sse_entry_is_skipped_with_a_warning_and_the_other_servers_still_load(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.json", {
        "old": {"type": "sse", "url": "http://h/sse"},
        "files": {"command": "python", "args": ["-m", "server"]},
    })
    warnings: list[str] = []
    specs = load_mcp_config(config, environ={}, warn=warnings.append)
    assert [spec.name for spec in specs] == ["files"]
    [warning] = warnings
    assert "skipped mcpServers.old" in warning and "streamable HTTP" in warning


def test_an_sse_warning_reaches_stderr_and_never_stdout(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.json", {"old": {"type": "sse", "url": "http://h/sse"}})
    script = (
        "import sys; from pathlib import Path; from turnout.agent.cli.output import configure_logging; "
        "from turnout.agent.host import load_mcp_config; configure_logging(); "
        f"print(len(load_mcp_config(Path({str(config)!r}), environ={{}})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "0\n"
    assert "skipped mcpServers.old" in done.stderr


def test_a_file_without_mcp_servers_is_refused_with_an_example(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"servers": {}}', encoding="utf-8")
    with pytest.raises(UsageError, match='no "mcpServers" object'):
        load_mcp_config(config)


def test_exposed_names_are_valid_model_tool_names_and_long_ones_stay_distinct() -> None:
    assert exposed_name("fs", "read_file") == "fs__read_file"
    assert exposed_name("everything", "get-sum") == "everything__get-sum"
    assert exposed_name("s", "weird.name/x") == "s__weird_name_x"
    long_a = exposed_name("server", "a" * 80 + "1")
    long_b = exposed_name("server", "a" * 80 + "2")
    assert len(long_a) == len(long_b) == 64
    assert long_a != long_b


def test_builtin_tools_keep_plain_names_until_another_server_offers_the_same_name(
    tmp_path: Path,
) -> None:
    files = builtin_servers(tmp_path)[0]
    other = files.model_copy(update={"name": "other", "bare_names": False})
    (tmp_path / "a.txt").write_text("hello\n", encoding="utf-8")
    with McpHost([files, misbehaving()]) as host:
        names = {tool.name for tool in host.list_tools()}
        assert {"read_file", "list_files", "search", "bad__echo", "bad__pid"} <= names
        # A plain name that only one server has still reaches it.
        assert host.call_tool("echo", {"text": "hi"}).content == "hi"
    with McpHost([files, other]) as host:
        names = {tool.name for tool in host.list_tools()}
        assert "read_file" not in names
        assert {"files__read_file", "other__read_file"} <= names
        ambiguous = host.call_tool("read_file", {"path": "a.txt"})
        assert ambiguous.is_error and "files__read_file" in ambiguous.content
        assert "hello" in host.call_tool("other__read_file", {"path": "a.txt"}).content


def test_an_unknown_tool_is_an_error_result_that_lists_the_tools() -> None:
    with McpHost([misbehaving()]) as host:
        result = host.call_tool("bad__nope", {})
    assert result.is_error
    assert "bad__echo" in result.content


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(MISBEHAVING), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


def test_a_streamable_http_server_is_listed_and_called(http_server: str) -> None:
    remote = ServerSpec(name="remote", url=http_server, headers={"X-Team": "turnout"})
    with McpHost([remote]) as host:
        assert "remote__echo" in {tool.name for tool in host.list_tools()}
        result = host.call_tool("remote__echo", {"text": "over http"})
    assert not result.is_error
    assert result.content == "over http"


def test_a_server_that_never_answers_the_handshake_fails_the_start_within_the_timeout() -> None:
    # The server sleeps for an hour; the host gives up on it after two seconds.
    slow = misbehaving("slow", "--hang-at-start")
    with pytest.raises(ToolHostError, match="slow: failed to start .* handshake within 2s"), McpHost(
        [slow], start_timeout=2
    ):
        pass


def test_a_lenient_host_starts_without_a_broken_server_and_says_why() -> None:
    missing = ServerSpec(name="missing", command="/nonexistent/mcp-server")
    with McpHost([missing, misbehaving()], strict=False) as host:
        assert "command not found" in host.failed_servers()["missing"]
        assert host.call_tool("bad__echo", {"text": "still here"}).content == "still here"


def test_a_server_that_keeps_crashing_is_restarted_only_up_to_the_limit() -> None:
    with McpHost([misbehaving()], max_restarts=1) as host:
        first = host.call_tool("bad__crash", {})
        assert first.is_error and "was restarted" in first.content
        assert host.call_tool("bad__echo", {"text": "back"}).content == "back"
        second = host.call_tool("bad__crash", {})
        assert second.is_error and "could not be restarted" in second.content
        down = host.call_tool("bad__echo", {"text": "x"})
        assert down.is_error and "is down" in down.content
        assert "not restarted again after 1 restarts" in host.failed_servers()["bad"]


def test_a_huge_tool_result_is_cut_to_the_limit_with_a_note() -> None:
    with McpHost([misbehaving()]) as host:
        result = host.call_tool("bad__flood", {"megabytes": 3})
    assert not result.is_error
    assert len(result.content) < MAX_RESULT_CHARS + 100
    assert result.content.endswith("more characters not shown)")


def test_a_call_that_outlasts_several_pings_of_a_live_server_completes(tmp_path: Path) -> None:
    # A live server answers each ping (an error reply is an answer too); only silence or a
    # closed connection means it died. The call runs longer than a ping and its timeout.
    tests = own_server("tests", ["-m", "turnout.tools.tests", "--root", str(tmp_path)], tmp_path)
    with McpHost([tests], roots=[tmp_path], ping_every=0.3, ping_timeout=0.5) as host:
        result = host.call_tool("run_tests", {"command": "sleep 2.5; echo finished", "timeout_seconds": 30})
    assert not result.is_error, result.content
    assert "finished" in result.content

"""The "tests" MCP server, run as a real subprocess and driven over stdio by the mcp Client.

One server serves the module, rooted in a tiny generated pytest project whose test files
are switched between passing and failing by the tests here.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult

pytestmark = pytest.mark.anyio

PASSING = "def test_one():\n    assert 1 + 1 == 2\n\n\ndef test_two():\n    assert True\n"
FAILING = "def test_add():\n    assert 1 + 1 == 3\n"

RESULT_SHAPE = re.compile(
    r"\Aexit_code: (-?\d+)\ntimed_out: (true|false)\nsummary: (.*)\nsandbox: (.*)\n--- output ---\n",
    re.DOTALL,
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tests_project")
    # An ini file makes the project its own pytest root, away from this repository's config.
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return root


@pytest.fixture(scope="module")
async def client(project: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "turnout.tools.tests", "--root", str(project)],
        env={"TURNOUT_TEST_API_KEY": "sekrit", "TURNOUT_TEST_VISIBLE": "hidden", "LANG": "C.UTF-8",
             "PYTHON_API_TOKEN": "sekrit2"},
    )
    async with Client(params) as connected:
        yield connected


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def run_tests(client: Client, **arguments: object) -> tuple[int, bool, str, str]:
    """Call run_tests, check the reply's shape, return (exit code, timed out, summary, output)."""
    result = await client.call_tool("run_tests", arguments)
    text = text_of(result)
    assert not result.is_error, text
    shape = RESULT_SHAPE.match(text)
    assert shape, text
    return int(shape[1]), shape[2] == "true", shape[3], text[shape.end() :]


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed process stays a zombie until its new parent reaps it; it runs no more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_the_server_offers_run_tests_and_trace_test_with_input_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == ["run_tests", "trace_test"]
    assert set(tools["run_tests"].input_schema["properties"]) == {"command", "timeout_seconds"}
    assert "required" not in tools["run_tests"].input_schema
    assert tools["trace_test"].input_schema["required"] == ["test"]


async def test_a_passing_suite_reports_exit_code_zero_and_the_pytest_summary(
    client: Client, project: Path
) -> None:
    (project / "test_calc.py").write_text(PASSING)
    exit_code, timed_out, summary, output = await run_tests(client)
    assert (exit_code, timed_out) == (0, False)
    assert re.fullmatch(r"2 passed in \d+\.\d+s", summary), summary
    assert summary in output


async def test_a_failing_suite_is_a_normal_result_with_exit_code_one(
    client: Client, project: Path
) -> None:
    (project / "test_calc.py").write_text(PASSING)
    (project / "test_broken.py").write_text(FAILING)
    try:
        exit_code, timed_out, summary, output = await run_tests(client)
    finally:
        (project / "test_broken.py").unlink()
    assert (exit_code, timed_out) == (1, False)
    assert re.fullmatch(r"1 failed, 2 passed in \d+\.\d+s", summary), summary
    assert "FAILED test_broken.py::test_add" in output


def processes_running(argv: list[str]) -> list[int]:
    """Host pids of live (not zombie) processes whose command line is `argv`: commands in a
    sandbox have pids of their own, so the test finds them by what they run instead."""
    wanted = "\0".join(argv) + "\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            pid = int(entry.name) if entry.name.isdigit() else 0
            if pid and (entry / "cmdline").read_text() == wanted and not process_is_gone(pid):
                found.append(pid)
        except OSError:
            continue
    return found


async def test_a_command_that_never_ends_is_killed_with_its_children(client: Client) -> None:
    # A shell that waits on a background child; both outlive the 2 s timeout unless killed.
    sleeper = ["sleep", "4321"]
    command = "sh -c 'sleep 4321 & wait'"
    seen: list[int] = []
    outcome: list[tuple[int, bool, str, str]] = []

    async def call() -> None:
        outcome.append(await run_tests(client, command=command, timeout_seconds=2))

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(call)
        while not seen and not outcome:
            seen = processes_running(sleeper)
            await anyio.sleep(0.05)
    assert time.monotonic() - started < 15
    assert seen, "the background child never started"
    exit_code, timed_out, summary, output = outcome[0]
    assert (exit_code, timed_out, summary) == (-1, True, "")
    assert "timed out after 2 s" in output
    deadline = time.monotonic() + 5
    while processes_running(sleeper) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    assert processes_running(sleeper) == []


async def test_only_allowlisted_variables_reach_the_command(client: Client) -> None:
    exit_code, _, _, output = await run_tests(client, command="env; echo PATH=$PATH")
    assert exit_code == 0
    assert "LANG=C.UTF-8" in output
    assert "TURNOUT_TEST_VISIBLE" not in output  # not on the allowlist
    assert "sekrit" not in output  # an allowed prefix (PYTHON) that looks secret is dropped too
    assert "TURNOUT_TEST_API_KEY" not in output
    path_line = [line for line in output.splitlines() if line.startswith("PATH=")][-1]
    assert path_line.removeprefix("PATH=").split(os.pathsep)[0] == os.path.dirname(sys.executable)


async def test_long_output_keeps_its_head_and_tail(client: Client) -> None:
    command = "python -c \"for i in range(1000): print('line', i)\""
    _, _, _, output = await run_tests(client, command=command)
    lines = output.splitlines()
    assert lines[:2] == ["line 0", "line 1"]
    assert lines[49:52] == ["line 49", "... 800 lines omitted ...", "line 850"]
    assert lines[-1] == "line 999"
    assert len(lines) == 201


async def test_a_bad_timeout_is_refused_as_a_tool_error(client: Client) -> None:
    result = await client.call_tool("run_tests", {"command": "true", "timeout_seconds": 0})
    assert result.is_error
    assert "timeout_seconds must be between 1 and" in text_of(result)


async def test_the_test_command_option_sets_the_default_command(project: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "turnout.tools.tests",
            "--root",
            str(project),
            "--test-command",
            "echo custom default; exit 3",
        ],
    )
    async with Client(params) as client:
        exit_code, timed_out, summary, output = await run_tests(client)
    assert (exit_code, timed_out, summary) == (3, False, "")
    assert output == "custom default"

"""One conformance suite that every turnout tool server passes: each tool with missing and
mistyped arguments, oversize and over-long ones, file names that are not UTF-8, hostile
patterns, and then a bounded fuzz run over every tool's arguments.

What every reply must be, error or not: something the transport can send (JSON, no lone
surrogates), text, and for an error a message that says what was wrong: never the SDK's bare
"Error executing tool NAME", never a traceback, never ToolServer's "internal error" fallback. The
servers run in memory (`Client(server)`), which calls them directly without serialising, so
each reply is serialised here; one test drives the files server over real stdio too.

The fuzz run lasts FUZZ_SECONDS per server (TURNOUT_FUZZ_SECONDS overrides it) from a fixed
seed (TURNOUT_FUZZ_SEED), and prints how many calls it made.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, Tool
from turnout.agent.host import McpHost, builtin_servers
from turnout.tools import edit, files, git, tests
from turnout.tools._common import MAX_ARGUMENT_CHARS, ToolServer

pytestmark = pytest.mark.anyio

FUZZ_SECONDS = float(os.environ.get("TURNOUT_FUZZ_SECONDS", "6"))
FUZZ_SEED = int(os.environ.get("TURNOUT_FUZZ_SEED", "16"))
SECRET = "TOP-SECRET-VALUE"
LATIN1_NAME = b"caf\xe9.py"  # not UTF-8: os.listdir gives "caf\udce9.py"
SHOWN_NAME = "caf\\xe9.py"  # how every tool shows it, and accepts it back

SERVERS: dict[str, Callable[[Path], ToolServer]] = {
    "files": files.create_server,
    "edit": edit.create_server,
    "git": git.create_server,
    "tests": lambda root: tests.create_server(root, f"{sys.executable} -c pass"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A git repository with the awkward files real ones have; beside it, `outside` with a
    secret, to show that nothing a tool does reaches it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n", encoding="utf-8"
    )
    (repo / "long.txt").write_text("a" * 5000 + "b\n", encoding="utf-8")
    (repo / "latin1.txt").write_bytes(b"caf\xe9 au lait\n")
    (repo / "blob.bin").write_bytes(b"\0\1\2" * 100)
    (repo / os.fsdecode(LATIN1_NAME)).write_bytes(b"x = 1\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "-m", "one"],
        cwd=repo, check=True,
    )
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    return repo


@pytest.fixture
async def clients(root: Path) -> AsyncIterator[dict[str, Client]]:
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(Client(make(root.resolve())))
            for name, make in SERVERS.items()
        }


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


def reply_problem(tool: str, result: CallToolResult) -> str | None:
    """Why a reply breaks the contract, or None when it keeps it."""
    try:
        result.model_dump_json()
    except Exception as exc:  # noqa: BLE001 - any failure to serialise is the finding
        return f"the reply cannot be sent: {exc}"
    text = text_of(result)
    if not result.is_error:
        return None
    if not text.strip():
        return "an error without a message"
    if re.fullmatch(rf"Error executing tool {tool}", text.strip()):
        return "the SDK's bare crash message"
    if "Traceback (most recent call last)" in text or ": internal error, " in text:
        return f"a failure the tool did not foresee: {text[:300]}"
    return None


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    result = await client.call_tool(tool, arguments)
    problem = reply_problem(tool, result)
    assert problem is None, f"{tool}({short(arguments)}): {problem}"
    return result


def short(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r:.60}" for key, value in arguments.items())


async def tools_of(client: Client) -> list[Tool]:
    return (await client.list_tools()).tools


def properties(tool: Tool) -> dict[str, dict[str, Any]]:
    return dict(tool.input_schema.get("properties", {}))


def types_of(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property accepts ("string", "integer", "boolean", "null")."""
    if "type" in schema:
        return {schema["type"]}
    return {option.get("type", "") for option in schema.get("anyOf", [])}


def valid_arguments(tool: Tool) -> dict[str, Any]:
    """Arguments that pass the schema: required ones only, with plain values."""
    plain = {"string": "calc.py", "integer": 1, "boolean": False}
    values = {"query": "add", "old": "a + b", "new": "a + b", "content": "x\n", "test": "test_calc.py"}
    arguments: dict[str, Any] = {}
    for name in tool.input_schema.get("required", []):
        kinds = types_of(properties(tool)[name])
        arguments[name] = values.get(name, plain[next(k for k in kinds if k in plain)])
    if tool.name == "apply_patch":
        arguments["patch"] = "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-def add(a, b):\n+def add(a, b):\n"
    return arguments


async def still_answers(client: Client) -> None:
    tool = (await tools_of(client))[0]
    result = await client.call_tool(tool.name, valid_arguments(tool))
    assert reply_problem(tool.name, result) is None


# ----- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
async def test_every_tool_refuses_missing_and_mistyped_arguments_naming_them(
    clients: dict[str, Client], server: str
) -> None:
    client = clients[server]
    for tool in await tools_of(client):
        valid = valid_arguments(tool)
        for name in tool.input_schema.get("required", []):
            result = await call(client, tool.name, {k: v for k, v in valid.items() if k != name})
            assert result.is_error and name in text_of(result), text_of(result)
        for name in properties(tool):
            result = await call(client, tool.name, valid | {name: {"not": "this"}})
            assert result.is_error and name in text_of(result), text_of(result)
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error and "no_such_tool" in text_of(unknown)
    await still_answers(client)


@pytest.mark.parametrize("server", SERVERS)
async def test_every_oversize_or_over_long_argument_is_refused_up_front(
    clients: dict[str, Client], server: str
) -> None:
    client = clients[server]
    for tool in await tools_of(client):
        for name, schema in properties(tool).items():
            if "string" not in types_of(schema):
                continue
            for size in (5000, MAX_ARGUMENT_CHARS + 1):
                started = time.monotonic()
                result = await call(client, tool.name, valid_arguments(tool) | {name: "a/" * (size // 2 + 1)})
                elapsed = time.monotonic() - started
                if result.is_error and "limit" in text_of(result):
                    assert f"{name!r}" in text_of(result) and elapsed < 1.0, text_of(result)
                else:  # 5,000 characters is within this argument's limit: then it is handled
                    assert size == 5000, f"{tool.name}.{name}: {text_of(result)[:200]}"
    await still_answers(client)


async def test_a_five_thousand_character_path_is_refused_with_the_reason(
    clients: dict[str, Client],
) -> None:
    for server, tool, extra in [
        ("files", "read_file", {}),
        ("files", "list_files", {}),
        ("files", "search", {"query": "x"}),
        ("edit", "write_file", {"content": "x"}),
        ("git", "git_diff", {}),
    ]:
        result = await call(clients[server], tool, {"path": "d/" * 2500} | extra)
        assert result.is_error and "5,000 characters" in text_of(result), text_of(result)
        deep = await call(clients[server], tool, {"path": "n" * 300 + "/x"} | extra)
        assert deep.is_error and "300 bytes" in text_of(deep), text_of(deep)


# ----- names that are not UTF-8 ------------------------------------------------------------


async def test_a_name_that_is_not_utf8_is_listed_searched_read_and_edited_escaped(
    clients: dict[str, Client], root: Path
) -> None:
    listing = text_of(await call(clients["files"], "list_files", {}))
    assert SHOWN_NAME in listing.splitlines()
    found = text_of(await call(clients["files"], "search", {"query": "x = 1"}))
    assert f"{SHOWN_NAME}:1: x = 1" in found
    regex_found = text_of(await call(clients["files"], "search", {"query": r"x = \d", "regex": True}))
    assert f"{SHOWN_NAME}:1: x = 1" in regex_found
    read = text_of(await call(clients["files"], "read_file", {"path": SHOWN_NAME}))
    assert read == f"# {SHOWN_NAME} lines 1-1 of 1\nx = 1\n"
    edited = await call(clients["edit"], "replace_in_file", {"path": SHOWN_NAME, "old": "x = 1", "new": "x = 2"})
    assert not edited.is_error and f"+++ b/{SHOWN_NAME}" in text_of(edited)
    assert (root / os.fsdecode(LATIN1_NAME)).read_bytes() == b"x = 2\n"
    status = text_of(await call(clients["git"], "git_status", {}))
    assert '"caf\\351.py"' in status  # git's own quoting of the name


def test_over_stdio_a_name_that_is_not_utf8_lists_at_once_instead_of_killing_the_server(
    root: Path,
) -> None:
    # In memory nothing is serialised; over a pipe the reply is JSON, which cannot carry the
    # raw name: the server's writer died and the call waited out the host's timeout.
    with McpHost(builtin_servers(root)[:1], call_timeout=30) as host:
        started = time.monotonic()
        listing = host.call_tool("list_files", {})
        assert not listing.is_error and SHOWN_NAME in listing.content
        assert time.monotonic() - started < 5
        read = host.call_tool("read_file", {"path": SHOWN_NAME})
        assert not read.is_error and read.content.endswith("x = 1\n")


# ----- hostile patterns --------------------------------------------------------------------


async def test_a_catastrophic_regex_returns_within_two_seconds_and_the_server_still_answers(
    clients: dict[str, Client],
) -> None:
    started = time.monotonic()
    result = await call(clients["files"], "search", {"query": "(a+)+$", "regex": True})
    elapsed = time.monotonic() - started
    assert result.is_error and "backtracks" in text_of(result) and "long.txt" in text_of(result)
    assert elapsed < 2.0, f"took {elapsed:.1f}s"
    started = time.monotonic()
    read = await call(clients["files"], "read_file", {"path": "calc.py"})
    assert not read.is_error and time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("server", "tool", "arguments"),
    [
        ("files", "list_files", {"pattern": "["}),
        ("files", "list_files", {"pattern": "[]]"}),
        ("files", "list_files", {"pattern": "[z-a]"}),
        ("files", "list_files", {"pattern": "**/**/**/**/**/**/**/**/*"}),
        ("files", "search", {"query": "(?P<x", "regex": True}),
        ("files", "search", {"query": "\\", "regex": True}),
        ("files", "search", {"query": "(x+x+)+y", "regex": True}),
        ("files", "read_file", {"path": "/proc/self/environ"}),
        ("files", "read_file", {"path": "\udce9"}),
        ("files", "read_file", {"path": "calc.py", "start_line": 10**30}),
        ("edit", "apply_patch", {"patch": "--- a/calc.py\n+++ b/calc.py\n@@ -99999999999999999999 +1 @@\n"}),
        ("edit", "replace_in_file", {"path": "calc.py", "old": "\udce9", "new": "x"}),
        ("edit", "write_file", {"path": "new.py", "content": "\ud800"}),
        ("git", "git_show", {"revision_name": "--output=/tmp/turnout-x"}),
        ("git", "git_show", {"revision_name": "HEAD:../outside/secret.txt"}),
        ("git", "git_log", {"revision_range": "HEAD@{99999999999999}"}),
        ("git", "git_log", {"max_count": -1}),
        ("tests", "run_tests", {"timeout_seconds": 10**30}),
        ("tests", "trace_test", {"test": "--co"}),
    ],
)
async def test_a_hostile_argument_gets_a_clean_answer(
    clients: dict[str, Client], root: Path, server: str, tool: str, arguments: dict[str, Any]
) -> None:
    result = await call(clients[server], tool, arguments)
    assert SECRET not in text_of(result)
    assert not Path("/tmp/turnout-x").exists()
    await still_answers(clients[server])


# ----- fuzz --------------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "", ".", "..", "/", "./", "../outside/secret.txt", "/etc/passwd", "calc.py", "test_calc.py",
    SHOWN_NAME, "latin1.txt", "blob.bin", "long.txt", ".git/config", ".git", "sub/new.py",
    "\udce9", "\ud800", "a\0b", "\n", "\r\n", "~", "$HOME", "`id`", "$(id)", "-rf", "--help",
    "--output=/tmp/turnout-x", "HEAD", "HEAD~1", "HEAD:calc.py", "main..HEAD", "@{-1}",
    "(a+)+$", "[", "**/*", "*" * 200, "?" * 50, "[!a]", "\\", "(?", "💥" * 10, "é" * 300,
    "x" * 5000, "d/" * 3000, "a + b", "def add(a, b):", "--- a/calc.py\n+++ b/calc.py\n",
    "--- /dev/null\n+++ b/../outside/x\n@@ -0,0 +1 @@\n+x\n",
    "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a + b\n+    return 0\n",
]
HOSTILE_INTEGERS = [0, 1, 2, -1, 3, 200, 201, 3600, 3601, 2**31, 2**63, -(2**63), 10**30]
# The tests server runs shell commands: it is fuzzed with hostile output, not hostile commands.
COMMANDS = [None, "true", "exit 3", "printf 'caf\\351\\n'", "head -c 3000000 /dev/zero | tr '\\0' x",
            "echo $((1/0))"]


def random_text(rng: random.Random) -> str:
    alphabet = "ab/._-*?[]()+\\$`'\"\n\t\0 é💥\udce9\ud800"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def fuzz_value(rng: random.Random, name: str, schema: dict[str, Any]) -> Any:
    kinds = types_of(schema)
    if name == "command":
        return rng.choice(COMMANDS)
    if name == "timeout_seconds":
        return rng.choice([1, 2, 0, -5, 10**30, "x"])
    if rng.random() < 0.1:  # the wrong type altogether
        return rng.choice([None, [], {}, 1.5, [1, 2], {"a": 1}, True, "7"])
    choice = rng.choice(sorted(kinds - {"null"}) or ["string"])
    if choice == "integer":
        return rng.choice(HOSTILE_INTEGERS)
    if choice == "boolean":
        return rng.choice([True, False])
    return rng.choice(HOSTILE_STRINGS) if rng.random() < 0.7 else random_text(rng)


def fuzz_arguments(rng: random.Random, tool: Tool) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    required = set(tool.input_schema.get("required", []))
    for name, schema in properties(tool).items():
        if (name in required and rng.random() < 0.95) or rng.random() < 0.5:
            arguments[name] = fuzz_value(rng, name, schema)
    if rng.random() < 0.05:
        arguments["unexpected_argument"] = random_text(rng)
    return arguments


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("server", SERVERS)
async def test_fuzzing_every_tool_s_arguments_kills_no_server_and_raises_no_traceback(
    clients: dict[str, Client], root: Path, server: str
) -> None:
    rng = random.Random(f"{FUZZ_SEED}-{server}")
    client = clients[server]
    tools = await tools_of(client)
    outside = snapshot(root.parent / "outside")
    calls = deaths = 0
    findings: list[str] = []
    deadline = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < deadline:
        tool = rng.choice(tools)
        arguments = fuzz_arguments(rng, tool)
        calls += 1
        try:
            result = await client.call_tool(tool.name, arguments)
        except Exception as exc:  # noqa: BLE001 - the call itself failing is a server death
            deaths += 1
            findings.append(f"{tool.name}({short(arguments)}): died: {exc!r}")
            continue
        problem = reply_problem(tool.name, result)
        if problem is not None:
            findings.append(f"{tool.name}({short(arguments)}): {problem}")
        if calls % 50 == 0:
            await still_answers(client)
    await still_answers(client)
    print(f"\nfuzz {server}: {calls} calls, {deaths} server deaths, {len(findings)} findings")
    assert deaths == 0 and not findings, "\n".join(findings[:20])
    assert calls >= 5  # the tests server's calls run pytest: a few a second
    assert snapshot(root.parent / "outside") == outside
    assert sorted(path.name for path in root.parent.iterdir()) == ["outside", "repo"]
    assert not Path("/tmp/turnout-x").exists()


async def test_a_failure_no_tool_foresaw_is_named_and_text_json_cannot_carry_is_escaped() -> None:
    server = ToolServer("demo")

    @server.tool(structured_output=False)
    def broken() -> str:
        """Fail the way a bug would."""
        raise OSError(36, "File name too long")

    @server.tool(structured_output=False)
    def raw_name() -> str:
        """Return a name as os.listdir gives it."""
        return os.fsdecode(LATIN1_NAME)

    async with Client(server) as client:
        failed = await client.call_tool("broken", {})
        named = await client.call_tool("raw_name", {})
    assert failed.is_error and "internal error, OSError: [Errno 36] File name too long" in text_of(failed)
    assert text_of(named) == SHOWN_NAME
    named.model_dump_json()  # sendable: the lone surrogate is gone

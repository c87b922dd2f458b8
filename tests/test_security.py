"""Security of the tool servers, the host and the approvals, attacked the way a hostile
repository, a confused model or a misbehaving server would.

Our servers run as real subprocesses behind the real host; the misbehaving server is
tests/servers/misbehaving.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import misbehaving
from turnout.agent.approvals import (
    ApprovalPolicy,
    ApprovalRequest,
    Decision,
    GuardedHost,
    ToolPins,
)
from turnout.agent.host import McpHost, builtin_servers

SECRET = "TOP-SECRET-VALUE"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`base/repo` is the root; `base/repo_evil` and `base/outside` hold secrets next to it."""
    base = tmp_path_factory.mktemp("security")
    repo = base / "repo"
    repo.mkdir()
    for sibling in ("repo_evil", "outside"):
        (base / sibling).mkdir()
        (base / sibling / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    (repo / "escape").symlink_to(base / "outside")  # a directory link out of the root
    (repo / "secret_link.txt").symlink_to(base / "outside" / "secret.txt")
    return repo


@pytest.fixture(scope="module")
def host(sandbox: Path) -> Iterator[McpHost]:
    with McpHost(builtin_servers(sandbox, git=True), call_timeout=60) as started:
        yield started


def refused(host: McpHost, tool: str, **arguments: object) -> str:
    result = host.call_tool(tool, dict(arguments))
    assert result.is_error, f"{tool} {arguments} was not refused: {result.content[:200]}"
    assert SECRET not in result.content
    return result.content


# ----- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("read_file", {"path": "../outside/secret.txt"}),
        ("read_file", {"path": "calc.py/../../outside/secret.txt"}),
        ("list_files", {"path": ".."}),
        ("search", {"query": "SECRET", "path": "../outside"}),
        ("write_file", {"path": "../outside/new.txt", "content": "x"}),
        ("replace_in_file", {"path": "../outside/secret.txt", "old": "TOP", "new": "x"}),
        ("apply_patch", {"patch": "--- /dev/null\n+++ b/../outside/new.txt\n@@ -0,0 +1 @@\n+x\n"}),
        ("git_diff", {"path": "../outside"}),
    ],
)
def test_path_traversal_is_refused_by_every_tool(
    host: McpHost, sandbox: Path, tool: str, arguments: dict[str, object]
) -> None:
    assert "outside" in refused(host, tool, **arguments)
    assert not (sandbox.parent / "outside" / "new.txt").exists()
    assert (sandbox.parent / "outside" / "secret.txt").read_text(encoding="utf-8") == SECRET + "\n"


def test_a_symlink_out_of_the_root_is_not_followed_for_reading_writing_or_listing(
    host: McpHost, sandbox: Path
) -> None:
    refused(host, "read_file", path="secret_link.txt")
    refused(host, "read_file", path="escape/secret.txt")
    refused(host, "write_file", path="escape/planted.txt", content="x")  # new file via its parent
    refused(host, "write_file", path="secret_link.txt", content="overwritten")
    assert not (sandbox.parent / "outside" / "planted.txt").exists()
    assert (sandbox.parent / "outside" / "secret.txt").read_text(encoding="utf-8") == SECRET + "\n"

    listing = host.call_tool("list_files", {})
    assert "secret_link.txt" not in listing.content and "escape/" not in listing.content
    found = host.call_tool("search", {"query": "TOP-SECRET"})
    assert SECRET not in found.content


def test_a_sibling_that_shares_the_roots_prefix_is_outside(host: McpHost, sandbox: Path) -> None:
    evil = sandbox.parent / "repo_evil" / "secret.txt"
    refused(host, "read_file", path=str(evil))
    refused(host, "read_file", path="../repo_evil/secret.txt")
    refused(host, "write_file", path=str(evil), content="x")
    assert evil.read_text(encoding="utf-8") == SECRET + "\n"


# ----- files that are not what they seem ------------------------------------------------------


def test_a_huge_file_is_read_by_range_in_bounded_memory_and_skipped_by_search(
    host: McpHost, sandbox: Path
) -> None:
    huge = sandbox / "huge.log"
    with huge.open("wb") as handle:
        handle.write(b"first line\n" * 1000 + b"needle here\n")
        handle.truncate(4 * 2**30)  # 4 GiB, sparse: loading it whole would exhaust memory
    try:
        result = host.call_tool("read_file", {"path": "huge.log", "start_line": 1000, "end_line": 1001})
        assert not result.is_error, result.content
        header, body = result.content.split("\n", 1)
        assert "lines 1000-1001 of a 4096 MB file" in header
        assert body == "first line\nneedle here\n"
        found = host.call_tool("search", {"query": "needle"})
        assert "skipped 1 files over" in found.content and "huge.log" in found.content
    finally:
        huge.unlink()


def test_a_binary_file_is_neither_shown_nor_edited(host: McpHost, sandbox: Path) -> None:
    (sandbox / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert "binary file" in refused(host, "read_file", path="image.png")
    assert "binary" in refused(host, "replace_in_file", path="image.png", old="PNG", new="GIF")
    assert (sandbox / "image.png").read_bytes().startswith(b"\x89PNG")


def test_a_named_pipe_is_refused_instead_of_blocking_the_server(host: McpHost, sandbox: Path) -> None:
    os.mkfifo(sandbox / "pipe")
    try:
        assert "not a regular file" in refused(host, "read_file", path="pipe")
        assert "not a regular file" in refused(host, "write_file", path="pipe", content="x")
        assert not host.call_tool("search", {"query": "anything"}).is_error
    finally:
        (sandbox / "pipe").unlink()


# ----- commands ---------------------------------------------------------------------------------


def test_a_command_that_never_ends_is_stopped_at_its_timeout(host: McpHost) -> None:
    result = host.call_tool("run_tests", {"command": "sleep 600", "timeout_seconds": 2})
    assert not result.is_error
    assert "timed_out: true" in result.content


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_children_that_fork_or_leave_the_process_group_are_killed_after_the_command(
    host: McpHost, sandbox: Path
) -> None:
    # Found by their command lines: inside a sandbox's own pid namespace, `$!` is not a host pid.
    command = "sleep 6011 & setsid sleep 6012 & sleep 0.2; echo started"
    result = host.call_tool("run_tests", {"command": command, "timeout_seconds": 30})
    assert "started" in result.content
    for marker in ("sleep\x006011", "sleep\x006012"):
        survivors = [pid for pid in running_with(marker) if alive(pid)]
        assert not survivors, f"{marker!r} outlived the command: {survivors}"


def running_with(cmdline: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and cmdline in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_secret_environment_variables_never_reach_a_command(sandbox: Path) -> None:
    os.environ["TURNOUT_TEST_API_KEY"] = SECRET
    try:
        with McpHost(builtin_servers(sandbox)) as fresh:
            result = fresh.call_tool("run_tests", {"command": "env"})
    finally:
        del os.environ["TURNOUT_TEST_API_KEY"]
    assert "PATH=" in result.content
    assert SECRET not in result.content


def test_a_hostile_git_config_cannot_make_git_status_run_a_program(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("a\n", encoding="utf-8")
    planted = repo / "PWNED"
    subprocess.run(["git", "config", "core.fsmonitor", f"touch {planted}; false"], cwd=repo, check=True)
    # The hazard is real: plain git runs the program.
    subprocess.run(["git", "status"], cwd=repo, capture_output=True, check=False)
    assert planted.exists()
    planted.unlink()
    with McpHost(builtin_servers(repo, git=True)[3:]) as git_only:
        status = git_only.call_tool("git_status", {})
        injected = git_only.call_tool("git_show", {"revision_name": "--output=/tmp/turnout-x"})
    assert "a.txt" in status.content
    assert not planted.exists()
    assert injected.is_error and "is not a revision" in injected.content


# ----- servers that misbehave -------------------------------------------------------------------


def test_a_server_that_crashes_mid_call_is_reported_and_restarted() -> None:
    with McpHost([misbehaving()]) as host:
        before = host.call_tool("bad__pid", {}).content
        crashed = host.call_tool("bad__crash", {})
        assert crashed.is_error
        assert "crashed during the call and was restarted" in crashed.content
        after = host.call_tool("bad__pid", {})
        assert not after.is_error and after.content != before
        assert host.restarts("bad") == 1


def test_a_server_that_dies_while_idle_is_restarted_before_the_next_call() -> None:
    with McpHost([misbehaving()]) as host:
        pid = int(host.call_tool("bad__pid", {}).content)
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
        # Death while idle is known once the host's reader has seen EOF on the pipe; a call sent
        # before that is indistinguishable from a crash mid-call (the previous test's case).
        deadline = time.monotonic() + 10
        while host.connected("bad") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not host.connected("bad")
        result = host.call_tool("bad__echo", {"text": "still answered"})
        assert not result.is_error and result.content == "still answered"
        assert host.restarts("bad") == 1


def test_a_server_that_hangs_times_out_and_is_replaced() -> None:
    with McpHost([misbehaving(timeout=3)]) as host:
        pid = int(host.call_tool("bad__pid", {}).content)
        hung = host.call_tool("bad__hang", {})
        assert hung.is_error and "did not answer within 3s" in hung.content
        assert not alive(pid)  # the hung server was stopped, not left running
        assert host.call_tool("bad__echo", {"text": "ok"}).content == "ok"


class RecordingAsker:
    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.requests: list[ApprovalRequest] = []

    def __call__(self, request: ApprovalRequest) -> Decision:
        self.requests.append(request)
        return self.decisions.pop(0) if self.decisions else "no"


def test_a_server_that_changes_a_tool_definition_is_flagged_and_blocked_until_approved(
    tmp_path: Path,
) -> None:
    pins = ToolPins(tmp_path / "pins.json")
    asker = RecordingAsker("no")
    policy = ApprovalPolicy(mode="full-auto")
    with McpHost([misbehaving()]) as host:
        guarded = GuardedHost(host, policy, pins=pins, asker=asker)
        assert "bad__read_note" in {tool.name for tool in guarded.list_tools()}  # pinned now
        assert guarded.call_tool("bad__read_note", {}).content == "ship it"
        assert asker.requests == []  # full-auto: nothing asked so far

        # The server has swapped the description for one with hidden instructions.
        names = {tool.name for tool in guarded.list_tools()}
        assert "bad__read_note" not in names and "bad__echo" in names
        [request] = asker.requests
        assert request.changed_definition
        assert "changed the definition of 'read_note'" in request.reason
        assert "+" in request.preview and "id_rsa" in request.preview
        blocked = guarded.call_tool("bad__read_note", {})
        assert blocked.is_error and "not approved" in blocked.content

    # Approved in a later session, the new definition becomes the pin.
    pins = ToolPins(tmp_path / "pins.json")
    with McpHost([misbehaving()]) as host:
        guarded = GuardedHost(host, policy, pins=pins, asker=RecordingAsker("yes"))
        guarded.list_tools()
        host.call_tool("bad__read_note", {})  # the server swaps its definition again
        assert "bad__read_note" in {tool.name for tool in guarded.list_tools()}
    stored = json.loads((tmp_path / "pins.json").read_text(encoding="utf-8"))
    [note_pin] = [pin for key, pin in stored.items() if key.startswith("bad/read_note")]
    assert "id_rsa" in note_pin["definition"]["description"]


# ----- approvals ----------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    return tmp_path


def test_ask_mode_shows_the_diff_of_an_edit_and_a_no_leaves_the_file_alone(project: Path) -> None:
    asker = RecordingAsker("no")
    with McpHost(builtin_servers(project)) as host:
        guarded = GuardedHost(host, ApprovalPolicy(mode="ask"), asker=asker)
        read = guarded.call_tool("read_file", {"path": "calc.py"})
        edit = guarded.call_tool(
            "replace_in_file", {"path": "calc.py", "old": "a - b", "new": "a + b"}
        )
    assert not read.is_error  # reads from turnout's own servers run without asking
    assert edit.is_error and "did not approve" in edit.content
    [request] = asker.requests
    assert "-    return a - b\n+    return a + b" in request.preview
    assert (project / "calc.py").read_text(encoding="utf-8").endswith("a - b\n")


def test_auto_edit_applies_edits_but_asks_before_a_command_and_shows_it(project: Path) -> None:
    asker = RecordingAsker("yes")
    with McpHost(builtin_servers(project)) as host:
        guarded = GuardedHost(host, ApprovalPolicy(mode="auto-edit"), asker=asker)
        edit = guarded.call_tool(
            "replace_in_file", {"path": "calc.py", "old": "a - b", "new": "a + b"}
        )
        run = guarded.call_tool("run_tests", {"command": "echo hello from tests"})
    assert not edit.is_error
    assert (project / "calc.py").read_text(encoding="utf-8").endswith("a + b\n")
    [request] = asker.requests
    assert request.tool == "run_tests" and request.preview == "$ echo hello from tests"
    assert "hello from tests" in run.content


def test_a_deny_rule_wins_even_in_full_auto_and_without_an_asker_ask_means_no(project: Path) -> None:
    policy = ApprovalPolicy(mode="full-auto", tools={"tests__*": "deny"})
    with McpHost(builtin_servers(project)) as host:
        denied = GuardedHost(host, policy).call_tool("run_tests", {"command": "touch ran"})
        unattended = GuardedHost(host, ApprovalPolicy(mode="ask")).call_tool(
            "write_file", {"path": "new.py", "content": "x = 1\n"}
        )
    assert denied.is_error and "denied by the approval policy" in denied.content
    assert unattended.is_error and "did not approve" in unattended.content
    assert not (project / "ran").exists() and not (project / "new.py").exists()


def test_the_configured_test_command_runs_in_ask_mode_but_the_models_own_command_does_not(
    project: Path, tmp_path: Path
) -> None:
    (project / "test_add.py").write_text("def test_ok():\n    assert True\n", encoding="utf-8")
    pins = ToolPins(tmp_path / "pins.json")
    with McpHost(builtin_servers(project)) as host:
        guarded = GuardedHost(host, ApprovalPolicy(mode="ask"), pins=pins)
        configured = guarded.call_tool("run_tests", {})
        traced = guarded.call_tool("trace_test", {"test": "test_add.py::test_ok"})
        chosen = guarded.call_tool("run_tests", {"command": "touch ran"})
        guarded.list_tools()
    assert not configured.is_error and "1 passed" in configured.content
    # One of the suite's own tests, traced, is the same command: no question either.
    assert traced.is_error and "did not approve" not in traced.content  # nothing of calc.py ran
    assert chosen.is_error and "did not approve" in chosen.content
    assert not (project / "ran").exists()
    # turnout's own servers are not pinned: an upgrade of turnout must not block its own tools.
    assert not (tmp_path / "pins.json").exists() or json.loads(
        (tmp_path / "pins.json").read_text(encoding="utf-8")
    ) == {}


def test_a_server_that_lives_on_but_stops_answering_is_noticed_within_seconds() -> None:
    # The writer of the server's replies dies on text JSON cannot carry; the process lives on
    # (its stdin reader holds it), so no end of pipe tells the host: without the host's pings
    # (the first of which also ends the mute process) the call waits out its 600 s.
    with McpHost([misbehaving()], call_timeout=600) as host:
        pid = int(host.call_tool("bad__pid", {}).content)
        started = time.monotonic()
        mute = host.call_tool("bad__undeliverable", {})
        waited = time.monotonic() - started
        assert mute.is_error and "server 'bad'" in mute.content and "was restarted" in mute.content
        assert waited < 15, f"noticed after {waited:.1f}s"
        assert not alive(pid)
        assert host.call_tool("bad__echo", {"text": "back"}).content == "back"

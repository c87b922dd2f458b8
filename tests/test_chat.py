"""`turnout chat`: model specs, the conversation loop over real MCP servers, approvals inline,
history between sessions, and the `--json` command end to end against an OpenAI-compatible
server on a local port (the fake upstream scripts the model's replies; the MCP servers and
the HTTP wire are real)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from turnout.agent import approvals
from turnout.agent.approvals import ApprovalPolicy, ApprovalRequest, Decision, GuardedHost
from turnout.agent.chat import ChatHistory, ChatSession, ChatSettings, UndoableTurns
from turnout.agent.cli.chat import run_in_chat
from turnout.agent.cli.chatview import LiveReply, held_back
from turnout.agent.cli.main import build_parser, main
from turnout.agent.compose import target_for
from turnout.agent.host import McpHost, builtin_servers
from turnout.agent.run import list_runs
from turnout.router.policy import TargetConfig
from turnout.runtimes.base import Message
from turnout.runtimes.errors import UsageError
from turnout.runtimes.testing.fake import ScriptedModel
from turnout.runtimes.testing.fake_upstream import FakeUpstream, Scripted, openai_stream


def test_model_specs_name_the_runtime_the_server_and_where_it_runs() -> None:
    local = target_for("local:smollm2-135m")
    assert (local.runtime, local.location, local.model) == ("llama_cpp", "local", "smollm2-135m")

    # Ollama runs where OLLAMA_HOST points: another machine on the network is not this one.
    ollama = target_for("ollama/qwen2.5-coder:1.5b", environ={"OLLAMA_HOST": "10.0.0.5:11434"})
    assert ollama.runtime == "openai_compat" and ollama.location == "onprem"
    assert (ollama.model, ollama.base_url) == ("qwen2.5-coder:1.5b", "http://10.0.0.5:11434/v1")
    here = target_for("ollama/llama3", environ={})
    assert here.base_url == "http://localhost:11434/v1" and here.location == "local"
    assert target_for("ollama/llama3", environ={"OLLAMA_HOST": "https://ollama.example.com"}).location == "cloud"

    server = target_for("http://127.0.0.1:8080/v1#qwen")
    assert (server.base_url, server.model, server.location) == ("http://127.0.0.1:8080/v1", "qwen", "local")
    # A server on another machine: in-house when only a private network can reach it, else it
    # may be anyone's, and the policy treats it as cloud.
    assert target_for("https://llm.example.com/v1#m").location == "cloud"
    assert target_for("http://192.168.1.20:8000/v1#m").location == "onprem"
    assert target_for("http://gpu-box:8000/v1#m").location == "onprem"
    assert target_for("http://llm.internal/v1#m").location == "onprem"
    assert target_for("http://[::1]:8080/v1#m").location == "local"
    assert target_for("anthropic/claude-sonnet-4").runtime == "anthropic"

    # Each says which rule set its location; a policy's own targets declared theirs.
    assert ollama.location_rule == "OLLAMA_HOST: 10.0.0.5 is a private network address"
    assert here.location_rule == "Ollama's default address: localhost is this machine (loopback)"
    assert target_for("http://gpu-box:8000/v1#m").model_copy().location_rule.startswith("gpu-box is a bare host name")
    assert "public name" in target_for("https://llm.example.com/v1#m").location_rule
    assert local.location_rule == "the model runs in this process"
    assert TargetConfig(runtime="openai_compat", location="onprem", base_url="http://x/v1").location_rule == (
        "declared by the policy")
    with pytest.raises(ValueError, match="location_rule"):  # not a setting a policy can write
        TargetConfig(runtime="openai_compat", location="cloud", location_rule="trust me")

    with pytest.raises(UsageError, match="ollama/NAME"):
        target_for("llama3")


def test_a_url_without_a_model_takes_the_first_model_the_server_lists() -> None:
    with FakeUpstream([]) as upstream:
        assert target_for(f"{upstream.url}/v1").model == "fake"


def test_the_cli_offers_the_approval_modes_of_the_approvals_module(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in (["chat"], ["run", "fix it"]):
        for mode in approvals.MODES:
            assert build_parser().parse_args([*command, "--approval-mode", mode]).approval_mode == mode
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--approval-mode", "yolo"])
        assert ", ".join(f"'{m}'" for m in approvals.MODES) in capsys.readouterr().err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def host(repo: Path) -> Iterator[McpHost]:
    with McpHost(builtin_servers(repo)) as started:
        yield started


def call(name: str, **arguments: object) -> str:
    return "```json\n" + json.dumps({"name": name, "arguments": arguments}) + "\n```"


def test_a_tool_call_reaches_the_server_and_its_result_goes_back_to_the_model(
    host: McpHost,
) -> None:
    model = ScriptedModel([call("read_file", path="calc.py"), "add subtracts: it returns a - b."])
    session = ChatSession(model, GuardedHost(host, ApprovalPolicy(mode="ask")))
    result = session.send("What does add in calc.py do?")

    assert result.exit_status == "answered"
    assert result.reply == "add subtracts: it returns a - b."
    [activity] = result.tool_calls
    assert activity.name == "read_file" and not activity.is_error
    second = model.requests[1].messages
    assert second[-1].role == "tool" and "return a - b" in second[-1].content
    assert {tool.name for tool in model.requests[0].tools} >= {"read_file", "write_file", "run_tests"}


def test_an_invalid_tool_call_is_sent_back_with_the_reason_and_never_runs(
    host: McpHost, repo: Path
) -> None:
    model = ScriptedModel([
        call("write_file", path="calc.py"),  # content is missing
        call("delete_everything"),
        "Sorry, I cannot do that.",
    ])
    session = ChatSession(model, GuardedHost(host, ApprovalPolicy(mode="full-auto")))
    result = session.send("empty calc.py")

    assert result.tool_calls == []
    assert any("content" in problem and "required" in problem for problem in result.problems)
    assert any("unknown tool 'delete_everything'" in problem for problem in result.problems)
    assert (repo / "calc.py").read_text(encoding="utf-8").endswith("a - b\n")
    assert not any(m.tool_calls for m in session.messages)  # no malformed call in the history


def test_an_edit_the_user_declines_is_not_written_and_the_model_is_told(
    host: McpHost, repo: Path
) -> None:
    asked: list[ApprovalRequest] = []

    def decline(request: ApprovalRequest) -> Decision:
        asked.append(request)
        return "no"

    model = ScriptedModel([
        call("replace_in_file", path="calc.py", old="a - b", new="a + b"),
        "Understood, I left it.",
    ])
    session = ChatSession(model, GuardedHost(host, ApprovalPolicy(mode="ask"), asker=decline))
    result = session.send("fix add")

    assert "+    return a + b" in asked[0].preview
    assert result.tool_calls[0].is_error and "did not approve" in result.tool_calls[0].result
    assert (repo / "calc.py").read_text(encoding="utf-8").endswith("a - b\n")


def test_what_a_chat_answer_writes_can_be_undone_and_a_turn_that_reads_leaves_no_run(
    host: McpHost, repo: Path
) -> None:
    original = (repo / "calc.py").read_text(encoding="utf-8")
    model = ScriptedModel([
        call("read_file", path="calc.py"), "It subtracts.",
        call("replace_in_file", path="calc.py", old="a - b", new="a + b"),
        call("write_file", path="notes/todo.md", content="check add\n"), "Fixed, and noted.",
    ])
    turns = UndoableTurns(GuardedHost(host, ApprovalPolicy(mode="full-auto")), repo)
    session = ChatSession(model, turns)
    for text in ("what does add do?", "fix add and note it"):
        turns.begin(text)
        assert session.send(text).exit_status == "answered"

    assert len(turns.turns) == 1  # only the turn that wrote is a run
    [listed] = list_runs(repo)
    assert listed.task == "chat: fix add and note it" and listed.run_id == turns.turns[0]
    assert "a + b" in (repo / "calc.py").read_text(encoding="utf-8")

    diff = turns.diff()
    assert "-    return a - b\n+    return a + b" in diff and "+++ b/notes/todo.md" in diff

    undone = turns.undo_last()
    assert undone is not None and undone.status == "restored"
    assert undone.restored == ["calc.py"] and undone.removed == ["notes/todo.md"]
    assert turns.diff() == ""
    assert (repo / "calc.py").read_text(encoding="utf-8") == original
    assert not (repo / "notes").exists()
    assert turns.undo_last() is None  # nothing left to undo in this session


def test_run_in_a_chat_lands_only_a_verified_change_and_undo_puts_it_back(
    calc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(calc_repo)
    buggy = (calc_repo / "calc.py").read_text(encoding="utf-8")
    fixed = buggy.replace("(len(values) - 1)", "len(values)")
    model = ScriptedModel(["calc.py\n```python\n" + fixed + "```\n"])
    with McpHost(builtin_servers(calc_repo)) as started:
        turns = UndoableTurns(GuardedHost(started, ApprovalPolicy(mode="auto-edit")), calc_repo)
        session = ChatSession(model, turns)
        said: list[str] = []
        run_in_chat("make the tests pass", session, "auto-edit", turns, said.append)

    assert (calc_repo / "calc.py").read_text(encoding="utf-8") == fixed
    assert any("tests pass" in line.lower() or "passed" in line for line in said)
    assert session.messages[-1].content.startswith("tests_passed")  # the conversation knows
    undone = turns.undo_last()
    assert undone is not None and undone.restored == ["calc.py"]
    assert (calc_repo / "calc.py").read_text(encoding="utf-8") == buggy


def test_a_model_that_keeps_calling_tools_stops_at_the_round_limit(host: McpHost) -> None:
    model = ScriptedModel([call("list_files")] * 5)
    session = ChatSession(
        model, GuardedHost(host, ApprovalPolicy()), settings=ChatSettings(max_tool_rounds=2)
    )
    result = session.send("list forever")
    assert result.exit_status == "max_tool_rounds"
    assert len(result.tool_calls) == 2


def test_history_survives_between_sessions_privately_and_starts_at_a_user_message(
    tmp_path: Path,
) -> None:
    history = ChatHistory(tmp_path / "chat" / "history.json", keep=3)
    history.save([
        Message(role="user", content="first"),
        Message(role="assistant", content="one"),
        Message(role="user", content="second"),
        Message(role="assistant", content="two"),
    ])
    loaded = ChatHistory(tmp_path / "chat" / "history.json", keep=3).load()
    # Keeping the last three would start at an assistant reply; the history starts at "second".
    assert [m.content for m in loaded] == ["second", "two"]
    assert stat.S_IMODE((tmp_path / "chat" / "history.json").stat().st_mode) == 0o600


def test_chat_json_answers_one_prompt_with_a_tool_call_through_an_openai_compatible_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "notes.md").write_text("hello\n", encoding="utf-8")
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"git": {
            "command": "python", "args": ["-m", "turnout.tools.git", "--root", "."], "cwd": ".",
        }}}),
        encoding="utf-8",
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + ":" + os.environ["PATH"])
    script = [
        Scripted.sse(openai_stream(tool_calls=[("call_1", "git__git_status", "{}")])),
        Scripted.sse(openai_stream("One new file: notes.md.")),
    ]
    with FakeUpstream(script) as upstream:
        # auto-edit: reads run unasked, even from a server that is not turnout's own.
        code = main(["chat", "--json", "--no-builtin-tools", "--approval-mode", "auto-edit",
                     "--model", f"{upstream.url}/v1#m", "what changed?"])
        sent = [request.body for request in upstream.requests]

    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["exit_status"] == "answered"
    assert out["reply"] == "One new file: notes.md."
    [activity] = out["tool_calls"]
    assert activity["name"] == "git__git_status" and "?? notes.md" in activity["result"]
    # The tools went out natively, and the tool's result came back to the model.
    assert sent[0]["tools"][0]["function"]["name"].startswith("git__")
    assert any(m["role"] == "tool" and "notes.md" in m["content"] for m in sent[1]["messages"])


# ---------------------------------------------------------------------------------------------
# The answer as it is written (agent/cli/chatview.py)


def live_view() -> tuple[LiveReply, list[str]]:
    written: list[str] = []
    return LiveReply(written.append, "m> "), written


def test_words_show_as_they_arrive_and_a_call_block_never_shows_as_text() -> None:
    live, written = live_view()
    for piece in ["Let me ", "read it.", "\n`", "``js", 'on\n{"name": "read_file"}\n```']:
        live.piece(piece)
    assert "".join(written) == "m> Let me read it.\n"  # the backticks were held back, then hidden
    live.interrupt()  # the call's own line comes next
    live.piece("The bug is on line 3.")
    live.finish("The bug is on line 3.")
    assert "".join(written) == "m> Let me read it.\n\nm> The bug is on line 3.\n"


def test_what_the_stream_did_not_show_is_printed_at_the_end_of_the_turn() -> None:
    live, written = live_view()
    live.piece("Here is the fix:\n```python\nx = 1\n```\nDone.")
    live.finish("Here is the fix:\n```python\nx = 1\n```\nDone.")
    assert "".join(written) == "m> Here is the fix:\n```python\nx = 1\n```\nDone.\n"

    live, written = live_view()  # a runtime that cannot stream: the whole answer, once
    live.finish("All tests pass.")
    assert written == ["m> All tests pass.\n"]


def test_a_held_back_tail_is_only_what_could_open_a_marker() -> None:
    assert held_back("see `") == 1 and held_back("see ``") == 2 and held_back("x <tool_") == 6
    assert held_back("plain words") == 0 and held_back("a ` b") == 0


def test_a_chat_audits_where_the_repository_policy_says_and_elsewhere_in_the_users_cache(tmp_path: Path) -> None:
    from turnout.agent.compose import chat_router

    governed, plain = tmp_path / "governed", tmp_path / "plain"
    governed.mkdir(), plain.mkdir()
    (governed / "turnout.toml").write_text('version = 1\n[audit]\npath = "logs/audit.jsonl"\n')
    cache_file = tmp_path / "cache" / "audit.jsonl"
    assert chat_router("local", governed, audit_path=cache_file).audit.path == governed / "logs/audit.jsonl"
    assert chat_router("local", plain, audit_path=cache_file).audit.path == cache_file

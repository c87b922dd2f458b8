"""The leak matrix: every route by which a labelled file's content can enter a request, under
every policy variant, against a real "cloud" that records every byte it receives.

The cloud target is the real `openai_compat` runtime talking HTTP to `FakeUpstream` on
127.0.0.1; the local target is a `ScriptedModel` (no GGUF model is loaded). Where a route goes
through a tool, the tool result is what turnout's real MCP servers (files, tests, git) answer on
a real git repository. The policy labels `secrets/**` local-only and prefers the cloud for
every kind of work, so anything the router does not catch goes out.

Each cell asserts: not one request (so not one labelled byte) reached the listener, and the
request went to the local target or was refused, with the label named in the route event,
the audit record and, for a refusal, the message. A control row sends an unlabelled read and
checks it does reach the listener, so a silent listener means something.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from turnout.agent.compose import build_targets
from turnout.agent.host import McpHost, builtin_servers
from turnout.router.audit import AuditLog
from turnout.router.policy import Policy, parse_policy
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatModel, ChatRequest, Message, ToolCall
from turnout.runtimes.errors import PolicyRefusal, RuntimeFailure
from turnout.runtimes.testing.fake import FailingModel, ScriptedModel
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)

CUSTOMERS = (
    "id,name,email,phone\n"
    "1,Maria Garcia,maria.garcia@acme-corp.com,+44 20 7946 0958\n"
    "2,Jonas Lindqvist,jonas.l@nordhavn-shipping.se,+46 8 123 456 78\n"
)
LEDGER = "2026-03-01 wire 48,200.00 EUR to Okafor Holdings ref QX-88-1172 approved by Lindqvist\n"
# Fragments that must never be seen at the listener (no single one is a scanner finding).
FRAGMENTS = ("Maria Garcia", "Jonas Lindqvist", "acme-corp", "nordhavn", "Okafor Holdings", "QX-88-1172")


class ListLogger:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("leaks") / "repo"
    (root / "secrets").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "tests").mkdir()
    (root / "secrets" / "customers.txt").write_text(CUSTOMERS, encoding="utf-8")
    (root / "secrets" / "ledger").write_text(LEDGER, encoding="utf-8")  # no extension
    (root / "src" / "app.py").write_text("def total(xs):\n    return sum(xs)\n", encoding="utf-8")
    (root / "alias.txt").symlink_to(root / "secrets" / "customers.txt")
    (root / "vault").symlink_to(root / "secrets")
    # A test that prints the labelled file under no name a path rule could read.
    (root / "tests" / "test_load.py").write_text(
        "import os\n\n\ndef test_load():\n"
        "    print(open(os.path.join('sec' + 'rets', 'customers.txt')).read())\n    assert False\n",
        encoding="utf-8",
    )
    (root / "notes.md").write_text("# notes\n", encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def host(repo: Path) -> Iterator[McpHost]:
    with McpHost(builtin_servers(repo, "python -m pytest -q -p no:cacheprovider", git=True), call_timeout=120) as h:
        yield h


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    def answer(request: RecordedRequest) -> Scripted:
        streamed = isinstance(request.body, dict) and request.body.get("stream")
        return Scripted.sse(openai_stream("cloud answer")) if streamed else Scripted.json(openai_completion("cloud answer"))

    with FakeUpstream(answer) as up:
        yield up


def policy(upstream: FakeUpstream, redaction: bool) -> Policy:
    return parse_policy(
        {
            "targets": {
                "local": {"runtime": "llama_cpp", "location": "local", "context_window": 65536},
                "cloud": {"runtime": "openai_compat", "location": "cloud", "model": "big",
                          "base_url": upstream.url + "/v1", "max_attempts": 1, "timeout_s": 10,
                          "context_window": 200000},
            },
            "labels": {"customers": {"paths": ["secrets/**"], "allow_locations": ["local"]}},
            "work": {"repetitive": ["cloud"], "hard": ["cloud"], "escalation": ["cloud"]},
            "redaction": {"enabled": redaction},
        },
        "turnout.toml",
    )


# ----- routes: each builds the request the agent would send, from the real tools' answers -----


def after_call(host: McpHost, tool: str, arguments: dict[str, Any]) -> ChatRequest:
    result = host.call_tool(tool, arguments)
    assert not result.is_error, result.content
    call = ToolCall(id="c1", name=tool, arguments=arguments)
    return ChatRequest(messages=[
        Message(role="user", content="tidy up the loader"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", name=tool, tool_call_id="c1", content=result.content),
    ])


def route_dotdot(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "read_file", {"path": "src/../secrets/customers.txt"})


def route_symlink(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "read_file", {"path": "alias.txt"})


def route_folder_symlink(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "read_file", {"path": "vault/ledger"})


def route_rev_path(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "git_show", {"revision_name": "HEAD:secrets/customers.txt"})


def route_rev_dot_path(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "git_show", {"revision_name": "HEAD:./secrets/ledger"})


def route_search_hit(host: McpHost, repo: Path) -> ChatRequest:
    request = after_call(host, "search", {"query": "Okafor"})
    assert "secrets/ledger:1:" in request.messages[-1].content
    return request


def route_cat_command(host: McpHost, repo: Path) -> ChatRequest:
    return after_call(host, "run_tests", {"command": "cat secrets/customers.txt"})


def route_test_output(host: McpHost, repo: Path) -> ChatRequest:
    request = after_call(host, "run_tests", {})
    assert "Maria Garcia" in request.messages[-1].content  # the test printed the file
    return request


def route_git_diff(host: McpHost, repo: Path) -> ChatRequest:
    """A test (or the model) copied rows into an unlabelled file during the run."""
    (repo / "notes.md").write_text("# notes\n" + CUSTOMERS.split("\n", 1)[1], encoding="utf-8")
    try:
        return after_call(host, "git_diff", {})
    finally:
        (repo / "notes.md").write_text("# notes\n", encoding="utf-8")


def route_task_text(host: McpHost, repo: Path) -> ChatRequest:
    return ChatRequest(messages=[Message(
        role="user", content="The import fails on this row, fix the parser:\n"
        "2,Jonas Lindqvist,jonas.l@nordhavn-shipping.se,+46 8 123 456 78",
    )])


def route_model_restating(host: McpHost, repo: Path) -> ChatRequest:
    """A router that never saw the read (a new chat model, a resumed chat): only the model's own
    words carry the content."""
    return ChatRequest(messages=[
        Message(role="user", content="what did the ledger say?"),
        Message(role="assistant", content="It records a wire of 48,200.00 EUR to Okafor Holdings "
                "ref QX-88-1172, approved by Lindqvist."),
        Message(role="user", content="draft the reply to them"),
    ])


ROUTES: dict[str, Callable[[McpHost, Path], ChatRequest]] = {
    "read_file src/../secrets": route_dotdot,
    "read_file symlink alias": route_symlink,
    "read_file folder symlink": route_folder_symlink,
    "git_show HEAD:path": route_rev_path,
    "git_show HEAD:./path": route_rev_dot_path,
    "search hit, extension-less file": route_search_hit,
    "run_tests cat": route_cat_command,
    "test output printing it": route_test_output,
    "git diff printing it": route_git_diff,
    "task text quoting it": route_task_text,
    "model restating it": route_model_restating,
}
VARIANTS = {
    "redaction off, cloud preferred": (False, "up"),
    "redaction on, cloud preferred": (True, "up"),
    "redaction off, local down (not loaded)": (False, "missing"),
    "redaction on, local down (failing)": (True, "failing"),
}


def router_for(upstream: FakeUpstream, repo: Path, redaction: bool, local_state: str,
               audit: Path) -> tuple[PolicyRouter, ScriptedModel, ListLogger]:
    local = ScriptedModel(["local answer"] * 3, name="local")
    chosen: ChatModel | None = {"up": local, "missing": None, "failing": FailingModel("local")}[local_state]
    pol = policy(upstream, redaction)
    logger = ListLogger()
    built, unavailable = build_targets(pol, chosen, environ={})
    assert "cloud" in built  # the real openai_compat runtime, pointed at the listener
    router = PolicyRouter(pol, built, repo=repo, logger=logger, audit=AuditLog(audit), unavailable=unavailable)
    return router, local, logger


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("route", list(ROUTES))
def test_no_labelled_byte_reaches_the_cloud(
    host: McpHost, repo: Path, upstream: FakeUpstream, tmp_path: Path, route: str, variant: str
) -> None:
    redaction, local_state = VARIANTS[variant]
    router, local, logger = router_for(upstream, repo, redaction, local_state, tmp_path / "audit.jsonl")
    request = ROUTES[route](host, repo)
    before = len(upstream.requests)

    if local_state == "up":
        assert router.chat(request).route == "local"
        assert len(local.requests) == 1
    elif local_state == "missing":
        with pytest.raises(PolicyRefusal) as refused:
            router.chat(request)
        assert "customers" in str(refused.value) and "refused before sending anything" in str(refused.value)
    else:
        with pytest.raises(RuntimeFailure, match="no other may be tried"):
            router.chat(request)

    assert len(upstream.requests) == before, f"{route} / {variant}: the cloud received a request"
    [route_event] = [e for e in logger.events if e["event"] == "route"]
    assert "label:customers" in route_event["rule"] and route_event["labels"].get("customers")
    [record] = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert "label:customers" in record["rule"] and record["destination"] in ("local", "")
    assert not any(fragment in json.dumps(record) for fragment in FRAGMENTS)


def test_the_listener_does_receive_what_may_leave_and_nothing_labelled_was_ever_sent(
    host: McpHost, repo: Path, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The control row: an unlabelled read goes out, so the silence of the matrix is the router's.
    Runs after the matrix (file order), so it also checks every byte the listener ever got."""
    router, local, _ = router_for(upstream, repo, False, "up", tmp_path / "audit.jsonl")
    before = len(upstream.requests)
    assert router.chat(after_call(host, "read_file", {"path": "src/app.py"})).route == "cloud"
    assert len(upstream.requests) == before + 1 and local.requests == []
    received = json.dumps([r.model_dump() for r in upstream.requests])
    assert "def total(xs)" in received
    assert not any(fragment in received for fragment in FRAGMENTS)

"""Path labels hold on every spelling of a path, and labels follow the content whatever route it
took: the router's taint and `turnout explain` resolve names by one function, and every request
is matched against the labelled files' fingerprints.

The repositories are real directories with real symlinks; the router is the real one, with
`ScriptedModel`s as targets so what each target received can be read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent.chat import ChatHistory, history_file
from turnout.agent.cli.main import main
from turnout.router.paths import repo_path, spellings
from turnout.router.policy import Policy, parse_policy
from turnout.router.router import PolicyRouter
from turnout.router.scan import PathLabeler, mentioned_paths
from turnout.runtimes.base import ChatRequest, Message, ToolCall
from turnout.runtimes.testing.fake import ScriptedModel

CUSTOMERS = (
    "id,name,email,phone\n"
    "1,Maria Garcia,maria.garcia@acme-corp.com,+44 20 7946 0958\n"
    "2,Jonas Lindqvist,jonas.l@nordhavn-shipping.se,+46 8 123 456 78\n"
)
POLICY = {
    "targets": {
        "local": {"runtime": "llama_cpp", "location": "local"},
        "cloud": {"runtime": "anthropic", "location": "cloud", "model": "m", "context_window": 200000},
    },
    "labels": {"customers": {"paths": ["secrets/**"], "allow_locations": ["local"]}},
    "work": {"repetitive": ["cloud"], "hard": ["cloud"], "escalation": ["cloud"]},
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "secrets" / "customers.txt").write_text(CUSTOMERS, encoding="utf-8")
    (root / "secrets" / "customers").write_text(CUSTOMERS, encoding="utf-8")  # no extension
    (root / "src" / "app.py").write_text("def total(xs):\n    return sum(xs)\n", encoding="utf-8")
    (root / "alias.txt").symlink_to(root / "secrets" / "customers.txt")
    (root / "vault").symlink_to(root / "secrets")  # a folder alias
    return root


def policy() -> Policy:
    return parse_policy(POLICY, "turnout.toml")


def read(path: str, content: str, tool: str = "read_file", key: str = "path") -> ChatRequest:
    call = ToolCall(id="c1", name=tool, arguments={key: path})
    return ChatRequest(messages=[
        Message(role="user", content="summarise the data"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", name=tool, tool_call_id="c1", content=content),
    ])


# ----- one normalization -------------------------------------------------------------------------


def test_repo_path_resolves_dots_symlinks_and_absolute_names_and_refuses_the_outside(repo: Path) -> None:
    assert repo_path(repo, "src/../secrets/customers.txt") == "secrets/customers.txt"
    assert repo_path(repo, "./secrets//customers.txt") == "secrets/customers.txt"
    assert repo_path(repo, "alias.txt") == "secrets/customers.txt"
    assert repo_path(repo, "vault/customers") == "secrets/customers"
    assert repo_path(repo, str(repo / "alias.txt")) == "secrets/customers.txt"
    assert repo_path(repo, "../repo/secrets/customers.txt") == "secrets/customers.txt"
    assert repo_path(repo, "../elsewhere/x") is None
    assert repo_path(repo, "/etc/passwd") is None
    assert repo_path(None, "src/../secrets/x") == "secrets/x"
    assert repo_path(None, "../x") is None


@pytest.mark.parametrize(
    "named",
    ["HEAD:secrets/customers.txt", "HEAD~1:./secrets/customers.txt", "main^:secrets/customers.txt",
     ":0:secrets/customers.txt", ":secrets/customers.txt", "v1.2@{upstream}:secrets/customers.txt"],
)
def test_a_git_object_name_stands_for_its_path(repo: Path, named: str) -> None:
    assert "secrets/customers.txt" in spellings(repo, named)


@pytest.mark.parametrize(
    ("named", "real"),
    [
        ("src/../secrets/customers.txt", "secrets/customers.txt"),
        ("alias.txt", "secrets/customers.txt"),
        ("vault/customers", "secrets/customers"),
        ("HEAD:secrets/customers.txt", "secrets/customers.txt"),
        ("HEAD~1:./secrets/customers", "secrets/customers"),
        ("/somewhere/else/secrets/customers.txt", "secrets/customers.txt"),
    ],
)
def test_every_spelling_of_a_labelled_path_carries_its_label(repo: Path, named: str, real: str) -> None:
    [hit] = PathLabeler(policy(), repo).labels_for(named)
    assert (hit.label, hit.path, hit.named) == ("customers", real, named)


def test_a_search_hit_in_a_file_of_any_name_names_its_file() -> None:
    hits = "secrets/customers:2: 1,Maria Garcia\n.env:1: A=1\nsrc/app.py:1: def total(xs):\n"
    assert mentioned_paths(hits) == ["secrets/customers", ".env", "src/app.py"]
    # read_file's header names the real path it read, whatever name it was asked for
    assert mentioned_paths("# secrets/customers.txt lines 1-3 of 3\nid,name\n") == ["secrets/customers.txt"]


# ----- the routes, through the router --------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "key", "named"),
    [
        ("read_file", "path", "src/../secrets/customers.txt"),
        ("read_file", "path", "alias.txt"),
        ("read_file", "path", "vault/customers"),
        ("git_show", "revision_name", "HEAD:secrets/customers.txt"),
        ("git_show", "revision_name", "HEAD~1:./secrets/customers.txt"),
        ("run_tests", "command", "cat secrets/customers.txt | head -5"),
        ("run_tests", "command", "python -c \"print(open('secrets/customers').read())\""),
    ],
)
def test_a_tool_call_that_reaches_a_labelled_file_keeps_the_request_local(
    repo: Path, tool: str, key: str, named: str
) -> None:
    """Each call's result is not the file's text here (`done`), so the path rule alone decides."""
    m = {"local": ScriptedModel(["ok"]), "cloud": ScriptedModel(["ok"])}
    router = PolicyRouter(policy(), m, repo=repo)
    decision = router.explain(read(named, "done", tool, key))
    assert decision.targets == ["local"] and decision.rule == "label:customers", decision.reasons
    assert router.chat(read(named, "done", tool, key)).route == "local"
    assert m["cloud"].requests == []


def test_a_search_over_the_repository_with_hits_in_an_extensionless_file_is_labelled(repo: Path) -> None:
    result = "secrets/customers:2: 1,Maria Garcia,maria.garcia@acme-corp.com\n"
    decision = PolicyRouter(policy(), {}, repo=repo).explain(read("Maria", result, "search", "query"))
    assert decision.targets == ["local"]
    assert any("secrets/customers matches 'secrets/**'" in r for r in decision.reasons)


def test_explain_file_and_the_run_agree_on_a_symlink(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "turnout.toml").write_text(
        '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
        '[targets.cloud]\nruntime = "anthropic"\nlocation = "cloud"\nmodel = "m"\ncontext_window = 200000\n\n'
        '[labels.customers]\npaths = ["secrets/**"]\n',
        encoding="utf-8",
    )
    assert main(["explain", "--file", str(repo / "alias.txt"), "--repo", str(repo), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["targets"] == ["local"] and "label:customers" in shown["rule"]
    assert any("named 'alias.txt'" in r for r in shown["reasons"])
    # The run's router, given the same name by a model, decides the same.
    run = PolicyRouter(parse_policy({**POLICY, "work": {}}, "turnout.toml"), {}, repo=repo)
    assert run.explain(read("alias.txt", "done")).targets == ["local"]


# ----- labels follow the content ---------------------------------------------------------------


def ask(*messages: Message) -> ChatRequest:
    return ChatRequest(messages=list(messages))


def user(text: str) -> Message:
    return Message(role="user", content=text)


@pytest.mark.parametrize(
    ("route", "request_"),
    [
        ("a test printing the file", read("tests/", "----- Captured stdout -----\n" + CUSTOMERS + "1 failed",
                                          "run_tests", "command")),
        ("a repr in an assertion", read("tests/", "E   AssertionError: assert '2,Jonas Lindqvist,"
                                        "jonas.l@nordhavn-shipping.se\\n' == ''", "run_tests", "command")),
        ("a diff", read("", "diff --git a/notes.md b/notes.md\n+1,Maria Garcia,maria.garcia@acme-corp.com,"
                        "+44 20 7946 0958\n", "git_diff", "path")),
        ("the task text", ask(user("Why does the loader reject this row? 1,Maria Garcia,maria.garcia@acme-corp.com"))),
        ("the model restating it", ask(
            user("continue"),
            Message(role="assistant", content="The first customer is Maria Garcia (maria.garcia@acme-corp.com, "
                    "+44 20 7946 0958)."),
            user("and the second?"),
        )),
        ("JSON-escaped", read("x", json.dumps({"rows": CUSTOMERS}), "fetch", "url")),
        ("a tool call's own arguments", ask(user("write it"), Message(role="assistant", tool_calls=[
            ToolCall(id="w", name="write_file", arguments={"path": "out.csv", "content": CUSTOMERS.upper()})]))),
    ],
)
def test_labelled_content_is_recognised_whatever_route_it_took(
    repo: Path, route: str, request_: ChatRequest
) -> None:
    m = {"local": ScriptedModel(["ok"]), "cloud": ScriptedModel(["ok"])}
    router = PolicyRouter(policy(), m, repo=repo)
    decision = router.explain(request_)
    assert decision.targets == ["local"] and "label:customers" in decision.rule, (route, decision.reasons)
    assert any("secrets/customers" in r and "its content" in r or "call arguments" in r
               for r in decision.reasons if r.startswith("taint")), decision.reasons
    assert router.chat(request_).route == "local" and m["cloud"].requests == []
    # and the run stays labelled afterwards: the model may carry the content on
    assert router.explain(ask(user("now plan the next step"))).targets == ["local"]


def test_what_the_unlabelled_files_share_with_a_labelled_one_does_not_label_a_request(repo: Path) -> None:
    header = "# Copyright 2026 Acme Corp. Licensed under the Apache License, Version 2.0.\n"
    (repo / "secrets" / "loader.py").write_text(header + "SALT = 'q8Zr-kept-inside-the-vault-2291'\n")
    (repo / "src" / "app.py").write_text(header + "def total(xs):\n    return sum(xs)\n")
    router = PolicyRouter(policy(), {}, repo=repo)
    assert router.explain(ask(user("review src/app.py:\n" + header))).targets == ["cloud", "local"]
    assert router.explain(ask(user("SALT = 'q8Zr-kept-inside-the-vault-2291'"))).targets == ["local"]


def test_a_labelled_file_written_during_the_run_is_fingerprinted(repo: Path) -> None:
    router = PolicyRouter(policy(), {}, repo=repo)
    (repo / "secrets" / "new.csv").write_text("7,Ines Okafor,ines.okafor@lagos-freight.ng,+234 1 555 0199\n")
    router.content.refresh(force=True)
    decision = router.explain(ask(user("look: 7,Ines Okafor,ines.okafor@lagos-freight.ng")))
    assert decision.targets == ["local"]
    assert any("secrets/new.csv" in r for r in decision.reasons)


def test_a_short_labelled_file_is_matched_whole(repo: Path) -> None:
    (repo / "secrets" / "token").write_text("hunter2-Correct-Horse\n")
    router = PolicyRouter(policy(), {}, repo=repo)
    assert router.explain(ask(user("the password is hunter2, right?"))).targets == ["cloud", "local"]
    assert router.explain(ask(user("the password is hunter2-correct-horse, right?"))).targets == ["local"]


def test_turnout_state_and_unlabelled_files_are_not_labelled(repo: Path) -> None:
    """`.turnout/` holds payloads of earlier runs; it is never walked, so it neither adds to nor
    removes from the index."""
    (repo / ".turnout").mkdir()
    (repo / ".turnout" / "checkpoint.txt").write_text(CUSTOMERS)
    router = PolicyRouter(policy(), {}, repo=repo)
    assert router.content.stats.labelled_files == 2
    assert router.explain(ask(user("def total(xs):\n    return sum(xs)\n"))).targets == ["cloud", "local"]
    assert router.explain(ask(user("1,Maria Garcia,maria.garcia@acme-corp.com"))).targets == ["local"]


def test_a_labelled_file_a_call_writes_is_fingerprinted_at_once(repo: Path) -> None:
    router = PolicyRouter(policy(), {}, repo=repo)
    row = "9,Tomasz Wrobel,t.wrobel@gdansk-port.pl,+48 58 555 0101\n"
    (repo / "secrets" / "added.csv").write_text(row)  # what the write_file call below wrote
    call = ToolCall(id="w1", name="write_file", arguments={"path": "secrets/added.csv", "content": "(elided)"})
    router.explain(ask(user("add the row"), Message(role="assistant", tool_calls=[call]),
                       Message(role="tool", name="write_file", tool_call_id="w1", content="wrote 1 line")))
    assert router.content.files_in("the row was 9,Tomasz Wrobel,t.wrobel@gdansk-port.pl")


def test_a_chat_restarted_from_its_history_keeps_its_taint_and_its_repository(repo: Path, tmp_path: Path) -> None:
    """The labels outlive the messages that brought them: the history keeps them, per repository."""
    first = PolicyRouter(policy(), {}, repo=repo)
    first.explain(read("alias.txt", "done"))
    path = history_file(tmp_path / "chat", repo)
    assert path != history_file(tmp_path / "chat", tmp_path)  # another repository, another history
    ChatHistory(path, keep=10).save([Message(role="user", content="go on")], first.taint)

    restarted = PolicyRouter(policy(), {}, repo=repo)
    restarted.adopt_taint(ChatHistory(path, keep=10).load_taint())
    decision = restarted.explain(ask(user("go on")))
    assert decision.targets == ["local"] and "label:customers" in decision.rule


def test_a_router_that_takes_over_a_conversation_keeps_its_taint(repo: Path) -> None:
    """`/model` in a chat builds a new router; the labels the conversation picked up go with it."""
    first = PolicyRouter(policy(), {}, repo=repo)
    first.explain(read("alias.txt", "done"))
    switched = PolicyRouter(policy(), {}, repo=repo)
    assert switched.explain(ask(user("go on"))).targets == ["cloud", "local"]  # a fresh router: clean
    switched = PolicyRouter(policy(), {}, repo=repo)
    switched.carry_taint_from(first)
    decision = switched.explain(ask(user("go on")))
    assert decision.targets == ["local"] and "label:customers" in decision.rule

"""The policy router: sensitive content stays where its labels allow, hard work goes to the cloud,
fallbacks stay inside the allowed list, refusals are clear, and the audit log never holds a payload.

The cloud target is a `ScriptedModel` (it records every request it receives), so "never a cloud
call" is checked on what the cloud actually got.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest
from turnout.agent.compose import open_router
from turnout.router.audit import AuditLog
from turnout.router.policy import Policy, parse_policy
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatRequest, Message, ToolCall, ToolSpec
from turnout.runtimes.errors import PolicyRefusal, RuntimeFailure
from turnout.runtimes.testing.fake import FailingModel, ScriptedModel

rng = random.Random(11)
FAKE_TOKEN = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
EMAIL = "maria.garcia7@acme-corp.com"

TARGETS = {
    "local": {"runtime": "llama_cpp", "location": "local"},
    "box": {"runtime": "openai_compat", "location": "onprem", "base_url": "http://box:8000/v1"},
    "cloud": {"runtime": "anthropic", "location": "cloud", "model": "claude-x", "context_window": 200000},
}


class ListLogger:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


def policy(**sections: Any) -> Policy:
    data: dict[str, Any] = {"targets": TARGETS}
    data.update(sections)
    return parse_policy(data, "turnout.toml")


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)])


def after_reading(path: str, content: str, *, then: str = "") -> ChatRequest:
    """A conversation in which the model read `path` through the read_file tool."""
    call = ToolCall(id="c1", name="read_file", arguments={"path": path})
    messages = [
        Message(role="user", content="fix the config loader"),
        Message(role="assistant", tool_calls=[call]),
        Message(role="tool", name="read_file", tool_call_id="c1", content=content),
    ]
    if then:
        messages.append(Message(role="user", content=then))
    return ChatRequest(messages=messages)


def models(**overrides: Any) -> dict[str, Any]:
    built = {"local": ScriptedModel(["local answer"] * 5, name="local"),
             "box": ScriptedModel(["box answer"] * 5, name="box"),
             "cloud": ScriptedModel(["cloud answer"] * 5, name="cloud")}
    built.update(overrides)
    return built


def test_the_default_policy_sends_every_request_to_local_and_logs_the_route() -> None:
    local = ScriptedModel(["ok"])
    log = ListLogger()
    router = PolicyRouter(Policy(), {"local": local}, logger=log)
    response = router.chat(ask("plan a fix"))

    assert response.route == "local" and len(local.requests) == 1
    route = next(e for e in log.events if e["event"] == "route")
    assert route["target"] == "local" and route["rule"] == "default-local-only" and route["reason"]


def test_hard_work_goes_to_the_cloud_and_repetitive_work_stays_local() -> None:
    m = models()
    router = PolicyRouter(policy(), m)
    assert router.chat(ask("plan how to fix the failing test")).route == "cloud"
    assert router.chat(after_reading("src/app.py", "def f(): return 1\n")).route == "local"
    assert [len(m[n].requests) for n in ("local", "box", "cloud")] == [1, 0, 1]


def test_sampled_tries_of_a_first_prompt_are_repetitive_work_and_its_greedy_try_is_hard() -> None:
    m = models()
    router = PolicyRouter(policy(), m)
    greedy = ask("plan how to fix the failing test")
    assert router.chat(greedy).route == "cloud"
    sampled = greedy.model_copy(update={"n": 4, "temperature": 0.7, "seed": 101})
    assert router.explain(sampled).work_class == "repetitive"
    assert router.chat(sampled.model_copy(update={"n": 1, "seed": 102})).route == "local"
    # A temperature alone, with no seed, is how a chat asks: not a try among several.
    assert router.explain(greedy.model_copy(update={"temperature": 0.7})).work_class == "hard"


def test_a_secret_keeps_even_hard_work_on_this_machine() -> None:
    m = models()
    router = PolicyRouter(policy(), m)
    decision = router.explain(ask(f"why does auth fail? my token is {FAKE_TOKEN}"))
    assert decision.targets == ["local"] and decision.rule == "label:secret"
    assert decision.labels == {"secret": 1} and decision.kinds == {"github_token": 1}
    assert router.chat(ask(f"why does auth fail? my token is {FAKE_TOKEN}")).route == "local"
    assert m["cloud"].requests == [] and m["box"].requests == []


def test_sensitive_content_with_no_allowed_target_is_a_clear_error_never_a_cloud_call(tmp_path: Path) -> None:
    cloud = ScriptedModel(["cloud answer"])
    only_cloud = parse_policy({"targets": {"cloud": TARGETS["cloud"]}}, "turnout.toml")
    router = PolicyRouter(only_cloud, {"cloud": cloud}, audit=AuditLog(tmp_path / "audit.jsonl"))

    with pytest.raises(PolicyRefusal) as refused:
        router.chat(ask(f"please email {EMAIL} the invoice"))

    message = str(refused.value)
    assert "pii" in message and "cloud" in message and "labels.pii.allow_targets" in message
    assert "refused before sending anything" in message
    assert cloud.requests == []
    (record,) = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert record["outcome"] == "refused" and record["destination"] == "" and record["attempts"] == []


def test_content_read_from_a_labelled_path_taints_the_rest_of_the_run() -> None:
    labelled = policy(labels={"confidential": {"paths": ["secrets/**"], "allow_locations": ["local"]}})
    m = models()
    router = PolicyRouter(labelled, m)

    assert router.chat(ask("plan the refactor")).route == "cloud"  # nothing sensitive yet
    assert router.chat(after_reading("secrets/db.env", "HOST=db1\nPORT=5432\n")).route == "local"
    # A later request that no longer shows the file is still routed by its label: the model may
    # have carried the content into its own words.
    later = router.explain(ask("now plan the rest of the refactor"))
    assert later.targets == ["local"] and later.rule == "label:confidential"
    assert any("secrets/db.env" in r and "secrets/**" in r for r in later.reasons)
    assert router.chat(ask("now plan the rest of the refactor")).route == "local"
    assert len(m["cloud"].requests) == 1


def test_taint_belongs_to_one_run() -> None:
    labelled = policy(labels={"confidential": {"paths": ["secrets/**"]}})
    first = PolicyRouter(labelled, models())
    first.chat(after_reading("secrets/db.env", "HOST=db1\n"))
    assert PolicyRouter(labelled, models()).explain(ask("plan the refactor")).target == "cloud"


def test_a_fallback_stays_inside_the_allowed_list(tmp_path: Path) -> None:
    m = models(local=FailingModel("local"))
    router = PolicyRouter(policy(), m, audit=AuditLog(tmp_path / "audit.jsonl"))
    # Personal data may go to local and onprem targets; local is down, so the on-prem box answers.
    response = router.chat(after_reading("src/crm.py", f"OWNER = '{EMAIL}'\n"))

    assert response.route == "box" and m["cloud"].requests == []
    (record,) = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(a["target"], a["outcome"]) for a in record["attempts"]] == [("local", "failed"), ("box", "ok")]
    assert record["allowed"] == ["local", "box"] and record["destination"] == "box"


def test_when_every_allowed_target_fails_nothing_else_is_tried() -> None:
    m = models(local=FailingModel("local"), box=FailingModel("box"))
    router = PolicyRouter(policy(), m)
    with pytest.raises(RuntimeFailure, match="no other may be tried"):
        router.chat(ask(f"plan how to contact {EMAIL}"))
    assert len(m["local"].requests) == 1 and len(m["box"].requests) == 1
    assert m["cloud"].requests == []


def test_without_sensitive_content_a_failed_cloud_call_falls_back_in_preference_order() -> None:
    m = models(cloud=FailingModel("cloud"))
    log = ListLogger()
    response = PolicyRouter(policy(), m, logger=log).chat(ask("plan a fix for the failing test"))
    assert response.route == "box"  # hard work: cloud, then onprem, then local
    assert [e["target"] for e in log.events if e["event"] == "route_fallback"] == ["cloud"]


def test_a_request_larger_than_a_targets_context_window_does_not_go_there() -> None:
    small_local = dict(TARGETS, local={"runtime": "llama_cpp", "location": "local", "context_window": 2000})
    p = parse_policy({"targets": small_local}, "turnout.toml")
    big = after_reading("src/big.py", "x = 1\n" * 3000)
    decision = PolicyRouter(p, models()).explain(big)
    assert "local" not in decision.targets and decision.targets[0] == "box"
    local = next(v for v in decision.verdicts if v.target == "local")
    assert any("context window is 2000" in r for r in local.reasons)


def test_too_large_for_every_allowed_target_is_a_refusal_that_says_so() -> None:
    p = parse_policy({"targets": {"local": {"runtime": "llama_cpp", "location": "local",
                                            "context_window": 1000}}}, "turnout.toml")
    with pytest.raises(PolicyRefusal, match="context_window"):
        PolicyRouter(p, {"local": ScriptedModel([])}).chat(ask("x" * 20000))


def test_an_escalation_hint_sends_repetitive_looking_work_to_the_cloud() -> None:
    request = after_reading("src/app.py", "def f(): return 1\n")
    router = PolicyRouter(policy(), models())
    assert router.explain(request).work_class == "repetitive"
    request.escalate = True
    request.escalation_reason = "the same call failed three times"
    decision = router.explain(request)
    assert decision.work_class == "escalation" and decision.target == "cloud"


def test_after_an_invalid_call_the_retry_is_escalation_work() -> None:
    request = ask("fix it")
    request.messages.append(Message(role="user", content="Your tool call was not valid and was not run"))
    assert PolicyRouter(policy(), models()).explain(request).work_class == "escalation"


def test_redaction_sends_placeholders_and_restores_them_in_tool_call_arguments() -> None:
    def reply(request: ChatRequest) -> str:
        text = request.messages[-1].content
        placeholder = text[text.index("[REDACTED:"):text.index("]", text.index("[REDACTED:")) + 1]
        return "```json\n" + json.dumps({"name": "set_env", "arguments": {"value": placeholder}}) + "\n```"

    cloud = ScriptedModel([reply])
    p = policy(redaction={"enabled": True})
    router = PolicyRouter(p, models(cloud=cloud))
    tool = ToolSpec(name="set_env", input_schema={"type": "object", "properties": {"value": {"type": "string"}},
                                                  "required": ["value"]})
    request = ChatRequest(messages=[Message(role="user", content=f"plan: store GITHUB_TOKEN={FAKE_TOKEN}")],
                          tools=[tool])

    response = router.chat(request)

    assert response.route == "cloud"
    sent = cloud.requests[0].model_dump_json()
    assert FAKE_TOKEN not in sent and "[REDACTED:github_token#1]" in sent
    assert response.tool_calls[0].arguments == {"value": FAKE_TOKEN}


def test_redaction_does_not_release_content_from_a_labelled_path() -> None:
    p = policy(redaction={"enabled": True}, labels={"confidential": {"paths": ["*.env"]}})
    decision = PolicyRouter(p, models()).explain(after_reading("prod.env", f"TOKEN={FAKE_TOKEN}\n"))
    assert decision.targets == ["local"]


def test_an_unavailable_target_is_skipped_and_the_reason_is_shown() -> None:
    m = models()
    del m["cloud"]
    router = PolicyRouter(policy(), m, unavailable={"cloud": "$ANTHROPIC_API_KEY is not set"})
    decision = router.explain(ask("plan a fix"))
    assert decision.targets == ["box", "local"]
    cloud = next(v for v in decision.verdicts if v.target == "cloud")
    assert "ANTHROPIC_API_KEY is not set" in " ".join(cloud.reasons)


def test_a_runs_router_without_a_cloud_key_still_works_on_the_local_model(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
        '[targets.claude]\nruntime = "anthropic"\nlocation = "cloud"\nmodel = "claude-x"\n'
    )
    local = ScriptedModel(["ok"])
    router = open_router(tmp_path, local, run_id="r9", environ={})
    claude = next(v for v in router.explain(ask("plan a fix")).verdicts if v.target == "claude")
    assert not claude.allowed and "ANTHROPIC_API_KEY" in " ".join(claude.reasons)
    assert router.chat(ask("plan a fix")).route == "local"
    (record,) = [json.loads(x) for x in (tmp_path / ".turnout" / "audit.jsonl").read_text().splitlines()]
    assert record["run_id"] == "r9" and record["destination"] == "local"


def test_the_audit_log_has_one_line_per_decision_and_never_the_payload(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    router = PolicyRouter(policy(), models(), run_id="run-1", audit=AuditLog(path))
    router.chat(ask(f"token {FAKE_TOKEN} and mail {EMAIL}: plan the fix"))
    router.chat(ask("plan the next step"))

    text = path.read_text()
    assert FAKE_TOKEN not in text and EMAIL not in text and "plan" not in text
    first, second = [json.loads(line) for line in text.splitlines()]
    assert first["labels"] == {"secret": 1, "pii": 1}
    assert first["kinds"] == {"github_token": 1, "email": 1}
    assert first["rule"] == "label:pii,label:secret" and first["destination"] == "local"
    assert first["run_id"] == "run-1" and len(first["request_hash"]) == 16 and first["request_bytes"] > 0
    assert first["outcome"] == "ok" and first["attempts"][0]["outcome"] == "ok"
    assert second["destination"] == "cloud" and second["labels"] == {}


def test_a_run_on_labelled_code_sends_zero_bytes_to_the_cloud_endpoint(calc_repo: Path) -> None:
    """The whole agent loop, with real MCP servers: the first prompt shows calc.py, which the
    policy labels, so every request stays local and the cloud endpoint never sees a connection."""
    import socketserver
    import threading

    from turnout.agent.loop import AgentConfig
    from turnout.agent.run import run_task

    received: list[bytes] = []

    class Recorder(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            received.append(self.request.recv(65536))

    server = socketserver.TCPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (calc_repo / "turnout.toml").write_text(
            '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
            '[targets.cloud]\nruntime = "openai_compat"\nlocation = "cloud"\nmodel = "big"\n'
            f'base_url = "http://127.0.0.1:{server.server_address[1]}/v1"\nmax_attempts = 1\n\n'
            '[labels.proprietary]\npaths = ["calc.py"]\n'
        )
        calc = (calc_repo / "calc.py").read_text()
        fixed = calc.replace("/ (len(values) - 1)", "/ len(values)")
        local = ScriptedModel(["calc.py\n```python\n" + fixed + "```\n"])
        report = run_task("make the tests pass", calc_repo, local, config=AgentConfig(samples=0, reflections=0), run_id="t1")
    finally:
        server.shutdown()
        server.server_close()

    assert report.exit_status == "tests_passed"
    assert received == []
    events = [json.loads(x) for x in (calc_repo / ".turnout/runs/t1/events.jsonl").read_text().splitlines()]
    route = next(e for e in events if e["event"] == "route")
    assert route["target"] == "local" and route["rule"] == "label:proprietary"
    audit = (calc_repo / ".turnout" / "audit.jsonl").read_text()
    assert "total(values)" not in audit and json.loads(audit.splitlines()[0])["labels"] == {"proprietary": 1}


def test_a_scanner_that_breaks_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.router.scan import Scanner

    def broken(self: Scanner, text: str) -> tuple[()]:
        raise ValueError("detector bug")

    monkeypatch.setattr(Scanner, "scan", broken)
    m = models()
    with pytest.raises(PolicyRefusal, match="was not sent"):
        PolicyRouter(policy(), m).chat(ask("plan a fix"))
    assert all(model.requests == [] for model in m.values())


def test_the_run_token_budget_counts_local_replies_too(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
        "[budgets]\nmax_tokens_per_run = 400\n"
    )
    local = ScriptedModel(["x" * 400] * 3)  # each reply: 100 completion tokens
    router = open_router(tmp_path, local, run_id="b1", environ={})
    request = ChatRequest(messages=[Message(role="user", content="summarise this")], max_tokens=100)
    router.chat(request)
    router.chat(request)
    # Two replies used about 2 x 103 tokens; a third may need 103 more: still within 400.
    router.chat(request)
    with pytest.raises(RuntimeFailure, match=r"used \d+ of its 400 tokens.*raise the run's token budget"):
        router.chat(request)
    assert len(local.requests) == 3  # the refused request never reached the model

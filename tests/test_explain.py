"""`turnout explain`: the router's decision on a prompt, a file or a recorded request, no model called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.runtimes.base import ChatRequest, Message, ToolCall

POLICY = """\
[targets.local]
runtime = "llama_cpp"
location = "local"

[targets.claude]
runtime = "anthropic"
location = "cloud"
model = "claude-x"
context_window = 200000

[labels.customers]
paths = ["data/customers/**"]
allow_locations = ["local"]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "turnout.toml").write_text(POLICY)
    (tmp_path / "data" / "customers").mkdir(parents=True)
    (tmp_path / "data" / "customers" / "export.csv").write_text("id,plan\n1,gold\n2,silver\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    return tmp_path


def explain_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["explain", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_json_on_content_from_a_labelled_path_returns_local_with_the_rule_and_labels(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = repo / "data" / "customers" / "export.csv"
    decision = explain_json(capsys, "summarise this export", "--file", str(csv), "--repo", str(repo))

    assert decision["target"] == "local" and decision["targets"] == ["local"]
    assert decision["refused"] is False
    assert decision["rule"] == "label:customers"
    assert decision["labels"] == {"customers": 1}
    assert decision["kinds"] == {"path:customers": 1}
    reasons = " ".join(decision["reasons"])  # type: ignore[arg-type]
    assert "data/customers/export.csv matches 'data/customers/**'" in reasons
    assert "target claude (cloud): blocked - customers may go only to local targets" in reasons
    assert decision["policy"].endswith("turnout.toml")  # type: ignore[union-attr]


def test_explain_on_an_unlabelled_file_lets_hard_work_go_to_the_cloud(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decision = explain_json(capsys, "plan the fix", "--repo", str(repo))
    assert decision["target"] == "claude" and decision["rule"] == "work:hard"
    decision = explain_json(capsys, "--file", str(repo / "src" / "app.py"), "--repo", str(repo))
    assert decision["target"] == "local" and decision["work_class"] == "repetitive"


def test_explain_a_recorded_request(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call = ToolCall(id="c1", name="read_file", arguments={"path": "data/customers/export.csv"})
    recorded = ChatRequest(
        messages=[
            Message(role="user", content="what plans do we sell?"),
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id="c1", name="read_file", content="id,plan\n1,gold\n"),
        ]
    )
    path = tmp_path / "request.json"
    path.write_text(recorded.model_dump_json())
    decision = explain_json(capsys, "--request", str(path), "--repo", str(repo))
    assert decision["target"] == "local" and decision["labels"] == {"customers": 1}


def test_explain_in_words_shows_the_destination_and_every_reason(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = repo / "data" / "customers" / "export.csv"
    assert main(["explain", "--file", str(csv), "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("destination: local (rule label:customers)")
    assert "taint customers: data/customers/export.csv" in out


def test_explain_a_refusal_without_a_local_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "turnout.toml").write_text(POLICY.replace('[targets.local]\nruntime = "llama_cpp"\n'
                                                          'location = "local"\n', ""))
    decision = explain_json(capsys, "mail maria.garcia7@acme-corp.com the invoice", "--repo", str(tmp_path))
    assert decision["refused"] is True and decision["target"] == "" and decision["rule"] == "refuse:label:pii"
    assert "labels.pii.allow_targets" in decision["reason"]  # type: ignore[operator]


def test_explain_with_nothing_to_explain_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--repo", str(repo)]) == 2
    assert "give a PROMPT" in capsys.readouterr().err


def test_explain_does_not_write_the_audit_log(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    explain_json(capsys, "plan", "--repo", str(repo))
    assert not (repo / ".turnout" / "audit.jsonl").exists()

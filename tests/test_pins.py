"""Committed tool pins (`turnout-pins.json`): written by `turnout pins --write`, and then the
repository, not each user, decides which tool definitions a model may see."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from servers import MISBEHAVING, misbehaving
from turnout.agent.approvals import ApprovalPolicy, GuardedHost, ToolPins, load_committed_pins
from turnout.agent.cli.main import main
from turnout.agent.host import McpHost
from turnout.runtimes.errors import UsageError


class Asker:
    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, request: object) -> str:
        self.asked += 1
        return "yes"  # would approve anything it were asked


def guarded(repo: Path, tmp_path: Path, asker: Asker) -> GuardedHost:
    pins = ToolPins(tmp_path / "user-pins.json", committed=load_committed_pins(repo))
    return GuardedHost(McpHost([misbehaving()]).__enter__(), ApprovalPolicy(mode="full-auto"), pins=pins,
                       asker=asker)  # type: ignore[arg-type]


def test_a_committed_pin_file_hides_what_was_not_reviewed_in_every_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".mcp.json").write_text(json.dumps(
        {"mcpServers": {"bad": {"command": sys.executable, "args": [str(MISBEHAVING)]}}}))
    assert main(["pins", "--repo", str(repo), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in shown["tools"]} == {"new"} and not shown["written"]
    assert not (repo / "turnout-pins.json").exists()

    assert main(["pins", "--repo", str(repo), "--write", "--json"]) == 0
    written = json.loads((repo / "turnout-pins.json").read_text())
    assert "bad/read_note" in written and "bad/echo" in written
    capsys.readouterr()

    # The reviewed definitions are visible; once read_note swaps its own, it is hidden, and
    # nobody is asked (an approval cannot override the team's review).
    asker = Asker()
    host = guarded(repo, tmp_path, asker)
    try:
        assert "bad__read_note" in {t.name for t in host.list_tools()}
        host.call_tool("bad__read_note", {})
        assert "bad__read_note" not in {t.name for t in host.list_tools()}
        refused = host.call_tool("bad__read_note", {})
        assert refused.is_error and "differs from the repository's reviewed turnout-pins.json" in refused.content
        assert asker.asked == 0
    finally:
        host.host.__exit__(None, None, None)

    # A tool the file does not hold is hidden too.
    del written["bad/echo"]
    (repo / "turnout-pins.json").write_text(json.dumps(written))
    host = guarded(repo, tmp_path, asker)
    try:
        names = {t.name for t in host.list_tools()}
        assert "bad__echo" not in names and "bad__pid" in names
        assert "is not in the repository's reviewed" in host.call_tool("bad__echo", {"text": "x"}).content
    finally:
        host.host.__exit__(None, None, None)

    assert main(["pins", "--repo", str(repo), "--json"]) == 0
    statuses = {r["tool"]: r["status"] for r in json.loads(capsys.readouterr().out)["tools"]}
    assert statuses["bad/echo"] == "new" and statuses["bad/pid"] == "reviewed"


def test_a_damaged_pin_file_is_an_error_that_says_how_to_rewrite_it(tmp_path: Path) -> None:
    (tmp_path / "turnout-pins.json").write_text("{not json")
    with pytest.raises(UsageError, match="turnout pins --write"):
        load_committed_pins(tmp_path)

"""At rest: `.turnout/` is private to the user and never committed, the run log holds no task
text, and the policy cannot send the audit log out of the repository."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from turnout.agent.compose import open_router
from turnout.agent.loop import AgentConfig
from turnout.agent.run import run_task
from turnout.router.atrest import open_private, private_dir, state_dir, write_private
from turnout.router.policy import parse_policy
from turnout.runtimes.errors import PolicyError, UsageError
from turnout.runtimes.testing.fake import ScriptedModel

TASK = "make the tests pass; the customer is Maria Garcia, maria.garcia@acme-corp.com"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_folder_is_0700_git_ignored_and_its_files_0600(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    folder = state_dir(tmp_path)
    run = private_dir(folder / "runs" / "r1")
    with open_private(run / "events.jsonl") as handle:
        handle.write("{}\n")
    write_private(run / "report.json", "{}")
    assert mode(folder) == mode(folder / "runs") == mode(run) == 0o700
    assert mode(run / "events.jsonl") == mode(run / "report.json") == 0o600
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    listed = subprocess.run(["git", "ls-files", "--cached"], cwd=tmp_path, capture_output=True, text=True,
                            check=True).stdout
    assert ".turnout" not in listed


def test_an_existing_state_folder_and_log_are_narrowed(tmp_path: Path) -> None:
    (tmp_path / ".turnout").mkdir(mode=0o755)
    (tmp_path / ".turnout" / "old.log").write_text("x")
    (tmp_path / ".turnout" / "old.log").chmod(0o644)
    state_dir(tmp_path)
    with open_private(tmp_path / ".turnout" / "old.log") as handle:
        handle.write("y")
    assert mode(tmp_path / ".turnout") == 0o700 and mode(tmp_path / ".turnout" / "old.log") == 0o600


def test_a_run_leaves_private_state_and_logs_the_task_as_a_hash_and_length(calc_repo: Path) -> None:
    calc = (calc_repo / "calc.py").read_text()
    fixed = calc.replace("/ (len(values) - 1)", "/ len(values)")
    local = ScriptedModel(["calc.py\n```python\n" + fixed + "```\n"])
    report = run_task(TASK, calc_repo, local, config=AgentConfig(samples=0, reflections=0), run_id="t1")
    assert report.exit_status == "tests_passed"
    state = calc_repo / ".turnout"
    assert mode(state) == 0o700 and (state / ".gitignore").is_file()
    for path in state.rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path
    events = (state / "runs" / "t1" / "events.jsonl").read_text()
    assert "Maria Garcia" not in events and "acme-corp" not in events
    start = json.loads(events.splitlines()[0])
    assert start["event"] == "run_start" and start["task_chars"] == len(TASK) and len(start["task_sha256"]) == 16


@pytest.mark.parametrize("path", ["/var/log/turnout.jsonl", "../audit.jsonl", ".turnout/../../x.jsonl", "~/audit.jsonl"])
def test_the_policys_audit_path_must_stay_inside_the_repository(path: str) -> None:
    with pytest.raises(PolicyError, match="must be a relative path inside the repository"):
        parse_policy({"audit": {"path": path}}, "turnout.toml")


def test_an_audit_path_that_a_symlink_takes_outside_is_refused_but_the_command_line_may(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    (repo / "logs").symlink_to(outside)
    (repo / "turnout.toml").write_text('[audit]\npath = "logs/audit.jsonl"\n')
    with pytest.raises(UsageError, match="leads outside the repository"):
        open_router(repo, ScriptedModel(["ok"]))
    router = open_router(repo, ScriptedModel(["ok"]), audit_path=outside / "chosen.jsonl")
    from turnout.runtimes.base import ChatRequest, Message

    router.chat(ChatRequest(messages=[Message(role="user", content="hi")]))
    assert (outside / "chosen.jsonl").is_file() and not (outside / "audit.jsonl").exists()

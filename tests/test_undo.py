"""`turnout undo`: a run on a copy of examples/calc (real MCP servers, real pytest, a scripted
model), then the tree put back byte for byte; refused, with the files, when one changed since."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_agent_loop import FIXED, GREEDY_ONLY, WRONG, calc_with, whole
from turnout.agent.cli.main import main
from turnout.agent.host import McpHost, builtin_servers
from turnout.agent.run import run_task
from turnout.agent.undo import RecordWrites, undo_run
from turnout.runtimes.testing.fake import ScriptedModel

# What running the tests leaves behind, which no edit of the run wrote.
GENERATED = {".turnout", "__pycache__", ".pytest_cache"}


def tree(repo: Path) -> dict[str, bytes]:
    """Every file of the repository and its bytes, generated caches aside."""
    files = {}
    for directory, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in GENERATED]
        for name in names:
            path = Path(directory) / name
            files[path.relative_to(repo).as_posix()] = path.read_bytes()
    return files


def undo(repo: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, object]]:
    code = main(["undo", *extra, "--repo", str(repo), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_undo_last_puts_every_byte_of_the_tree_back(calc_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # CRLF line ends and a file mode: what a text-level restore would lose.
    calc = calc_repo / "calc.py"
    calc.write_bytes(calc.read_bytes().replace(b"\n", b"\r\n"))
    calc.chmod(0o640)
    original = tree(calc_repo)
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED).replace("\r\n", "\n"))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)
    assert report.exit_status == "tests_passed" and report.files_changed == ["calc.py"]
    assert tree(calc_repo) != original

    code, result = undo(calc_repo, capsys, "last")

    assert code == 0
    assert result == {"run_id": report.run_id, "status": "restored", "restored": ["calc.py"],
                      "removed": [], "changed_since": []}
    assert tree(calc_repo) == original
    assert calc.stat().st_mode & 0o777 == 0o640
    # Twice is once: the second says so and writes nothing.
    assert undo(calc_repo, capsys, report.run_id) == (0, {**result, "status": "already_undone", "restored": []})
    assert main(["runs", "--repo", str(calc_repo), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == report.run_id and listed["status"] == "tests_passed" and listed["undone"]


def test_undo_refuses_and_lists_the_files_that_changed_since_the_run(
    calc_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, FIXED))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)
    calc = calc_repo / "calc.py"
    edited = calc.read_text() + "\n# the user's own line, after the run\n"
    calc.write_text(edited)

    code, result = undo(calc_repo, capsys, report.run_id)

    assert code == 1
    assert result["status"] == "changed_since" and result["changed_since"] == ["calc.py"]
    assert calc.read_text() == edited  # nothing written
    assert main(["undo", report.run_id, "--repo", str(calc_repo)]) == 1
    assert "calc.py" in capsys.readouterr().out


def test_a_run_that_changed_nothing_has_nothing_to_undo(calc_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = tree(calc_repo)
    model = ScriptedModel([whole("calc.py", calc_with(calc_repo, WRONG))])
    report = run_task("make the tests pass", calc_repo, model, config=GREEDY_ONLY)
    assert report.exit_status == "no_candidate_passed"
    assert undo(calc_repo, capsys) == (0, {"run_id": report.run_id, "status": "nothing_to_undo",
                                           "restored": [], "removed": [], "changed_since": []})
    assert tree(calc_repo) == original


def test_undo_of_a_repository_without_runs_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["undo", "last", "--repo", str(tmp_path)]) == 2
    assert "no runs yet" in capsys.readouterr().err
    assert main(["undo", "nope", "--repo", str(tmp_path)]) == 2
    assert "no such run" in capsys.readouterr().err


def test_undo_of_a_run_still_running_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / ".turnout" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"run_id": "r1", "task": "t", "started": "2026-12-01T10:00:00+00:00",
                                                  "model": "m", "pid": os.getpid(), "active": True}))
    assert main(["undo", "--repo", str(tmp_path)]) == 2
    assert "run r1 is still running" in capsys.readouterr().err


def test_files_and_directories_a_run_created_are_removed_again(tmp_path: Path) -> None:
    """Through the real edit server: a new file in a new directory, and a file the approvals
    (here: the server) refused to write, which is not recorded at all."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keep.txt").write_text("kept\n")
    original = tree(repo)
    run_dir = repo / ".turnout" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    with McpHost(builtin_servers(repo)) as host:
        recorder = RecordWrites(host, repo, run_dir, "r1")
        assert not recorder.call_tool("write_file", {"path": "pkg/sub/new.py", "content": "x = 1\n"}).is_error
        assert not recorder.call_tool("write_file", {"path": "keep.txt", "content": "changed\n"}).is_error
        assert recorder.call_tool("write_file", {"path": "../outside.txt", "content": "no\n"}).is_error
        failed = recorder.call_tool("replace_in_file", {"path": "keep.txt", "old": "absent", "new": "x"})
        assert failed.is_error
    assert sorted(recorder.record.files) == ["keep.txt", "pkg/sub/new.py"]

    result = undo_run(repo, "r1")

    assert result.restored == ["keep.txt"] and result.removed == ["pkg/sub/new.py"]
    assert tree(repo) == original and not (repo / "pkg").exists()


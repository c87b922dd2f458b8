"""Stopping and resuming `turnout run` as a user does: the console script in a subprocess on a
copy of examples/calc, its model an OpenAI-compatible fake on a loopback port (the product's
`FakeUpstream`), killed with SIGTERM in the middle of a model call, listed by `turnout runs`,
then carried on with `--resume last` and no TASK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_agent_loop import FIXED, calc_with, whole
from turnout.agent.cli.main import main
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)


def turnout(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "turnout.agent.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def events(repo: Path, run_id: str) -> list[str]:
    lines = (repo / ".turnout" / "runs" / run_id / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


def test_a_run_killed_with_sigterm_writes_its_report_and_resumes_with_resume_last(
    calc_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fix = whole("calc.py", calc_with(calc_repo, FIXED))

    def reply(request: RecordedRequest) -> Scripted:
        chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
        # The first call hangs (a slow model) until the test kills the run; later ones answer.
        delay = 120.0 if len(chats) == 1 else 0.0
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream(fix), delay_s=delay)
        return Scripted(body=openai_completion(fix), delay_s=delay)

    with FakeUpstream(reply) as upstream:
        model = f"{upstream.url}/v1#fake"
        common = ["--repo", str(calc_repo), "--model", model, "--samples", "0", "--reflections", "0", "--json"]
        first = turnout("run", "make the tests pass", *common)
        deadline = time.monotonic() + 60
        while not any(r.path.endswith("/chat/completions") for r in upstream.requests):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the run never called the model"
            time.sleep(0.1)
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)

        assert first.returncode == 130, err
        report = json.loads(out)
        run_id = report["run_id"]
        assert report["exit_status"] == "interrupted" and report["files_changed"] == []
        assert not report["tests_before"]["passed"]  # the steps before the kill are in it
        assert f"run {run_id}" in err and f"--resume {run_id}" in err  # said at the start
        assert "turnout: tests before: 2 failed, 3 passed" in err and "\x1b[" not in err  # a pipe: plain
        saved = json.loads((calc_repo / ".turnout" / "runs" / run_id / "report.json").read_text())
        assert saved["exit_status"] == "interrupted"
        assert (calc_repo / "calc.py").read_text() == calc_with(calc_repo, "    return total(values) / (len(values) - 1)")

        assert main(["runs", "--repo", str(calc_repo), "--json"]) == 0
        [listed] = json.loads(capsys.readouterr().out)
        assert listed["run_id"] == run_id and listed["status"] == "interrupted"
        assert listed["task"] == "make the tests pass"

        second = turnout("run", "--resume", "last", *common)
        out, err = second.communicate(timeout=300)

    assert second.returncode == 0, err
    resumed = json.loads(out)
    assert resumed["run_id"] == run_id and resumed["exit_status"] == "tests_passed"
    assert (calc_repo / "calc.py").read_text() == calc_with(calc_repo, FIXED)
    names = events(calc_repo, run_id)
    assert names.count("run_start") == 2 and "run_interrupted" in names
    assert names.count("tests_before") == 1  # the checkpointed first step was not run again
    assert main(["runs", "--repo", str(calc_repo)]) == 0
    assert "tests_passed" in capsys.readouterr().out


def test_resume_without_a_task_or_a_run_says_what_to_give(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--repo", str(tmp_path)]) == 2
    assert "give the TASK" in capsys.readouterr().err
    assert main(["run", "--resume", "last", "--repo", str(tmp_path)]) == 2
    assert "no runs yet" in capsys.readouterr().err
    run_dir = tmp_path / ".turnout" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(
        {"run_id": "r1", "task": "make the tests pass", "started": "2026-12-01T10:00:00+00:00", "model": "m"}))
    assert main(["run", "another task", "--resume", "last", "--repo", str(tmp_path)]) == 2
    assert "carries on with the run's own task ('make the tests pass')" in capsys.readouterr().err


def test_runs_tells_a_run_whose_process_died_from_one_still_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    for run_id, pid, started in (("alive", os.getpid(), "2026-12-01T10:00:02+00:00"),
                                 ("dead", int(dead.stdout), "2026-12-01T10:00:01+00:00")):
        run_dir = tmp_path / ".turnout" / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps(
            {"run_id": run_id, "task": "t", "started": started, "model": "m", "pid": pid, "active": True}))
    assert main(["runs", "--repo", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["status"]) for r in listed] == [("alive", "running"), ("dead", "killed")]

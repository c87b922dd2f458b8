"""The command line: errors on bad arguments say what was wrong, with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.runtimes.local import models
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)


def test_run_on_a_path_that_is_not_a_directory_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["run", "fix it", "--repo", str(a_file)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_run_on_a_missing_path_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "fix it", "--repo", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_max_steps_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "fix it", "--max-steps", "0"])
    assert exited.value.code == 2
    assert "at least 1" in capsys.readouterr().err


def test_run_without_its_model_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path / "empty-store"))
    assert main(["run", "fix it", "--repo", str(tmp_path), "--test-command", "true"]) == 2
    assert "turnout models install qwen2.5-coder-1.5b" in capsys.readouterr().err


def test_run_with_a_corrupted_gguf_names_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a gguf file")
    assert main(["run", "fix it", "--repo", str(tmp_path), "--model", str(bad), "--test-command", "true"]) == 2
    err = capsys.readouterr().err
    assert "could not load" in err and "GGUF" in err


def test_models_list_json_shows_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["name"] for m in listed["models"]} == set(models.CATALOG)
    assert [m["name"] for m in listed["models"] if m["default"]] == [models.DEFAULT_MODEL]


def test_the_console_script_teaches_with_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "turnout.agent.cli", "run", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "--max-steps" in done.stdout and "example" in done.stdout


def test_a_repository_without_tests_stops_before_the_model_loads_and_says_how_to_name_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path / "empty-store"))  # no model to load
    (tmp_path / "app.py").write_text("def f():\n    return 1\n")
    assert main(["run", "fix it", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no tests pytest would find" in err and "--test-command" in err
    assert "models install" not in err  # stopped before the model was looked for
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app_test.py").write_text("def test_f():\n    pass\n")
    assert main(["run", "fix it", "--repo", str(tmp_path)]) == 2
    assert "models install" in capsys.readouterr().err  # past the check: the model is missing


def test_resume_of_an_unknown_run_says_which_runs_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".turnout" / "runs" / "20261126-101010-abcdef").mkdir(parents=True)
    assert main(["run", "fix it", "--repo", str(tmp_path), "--resume", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no such run" in err and "20261126-101010-abcdef" in err


def test_a_command_without_its_action_shows_its_actions_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for command, action in (("models", "install"), ("policy", "check"), ("eval", "toolcalls"), ("bench", "ceiling")):
        assert main([command]) == 2
        assert action in capsys.readouterr().out
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_eval_json_piped_into_json_tool_parses_with_library_logs_on_stderr() -> None:
    """`turnout eval toolcalls --model URL --json | python -m json.tool`, with the retry layer
    logging every attempt (TURNOUT_LOG=info): the log lines go to stderr, stdout is the JSON."""

    def reply(request: RecordedRequest) -> Scripted:
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream("I cannot call that."))
        return Scripted.json(openai_completion("I cannot call that."))

    with FakeUpstream(reply) as upstream:
        eval_cmd = [sys.executable, "-m", "turnout.agent.cli", "eval", "toolcalls", "--model",
                    f"{upstream.url}/v1#fake", "--category", "simple_python", "--limit", "1", "--json"]
        produced = subprocess.Popen(eval_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**os.environ, "TURNOUT_LOG": "info"})
        parsed = subprocess.run([sys.executable, "-m", "json.tool"], stdin=produced.stdout,
                                capture_output=True, text=True, check=False)
        _, err = produced.communicate(timeout=120)
    assert produced.returncode == 0, err
    assert parsed.returncode == 0, parsed.stderr
    assert json.loads(parsed.stdout)["summaries"]
    assert b"upstream_attempt" in err


def test_version_names_the_installed_turnout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"turnout {version('turnout')}"

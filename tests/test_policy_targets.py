"""`turnout run` and `turnout chat` take the repository policy's targets and load the in-process
model only when a request is routed to it: a team policy that sends all work to its on-prem
server (a real loopback server here) never loads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_agent_loop import FIXED, calc_with, whole
from turnout.agent.cli.main import main
from turnout.agent.compose import LazyModel
from turnout.runtimes.base import ChatRequest, Message
from turnout.runtimes.testing.fake import ScriptedModel
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)

# Prints the peak RSS of the command and everything it waited for, in KiB, on its last line.
PEAK_RSS = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(done.returncode)"
)


def test_a_policy_that_routes_everything_on_prem_never_loads_the_in_process_model(
    calc_repo: Path, tmp_path: Path
) -> None:
    fix = whole("calc.py", calc_with(calc_repo, FIXED))

    def reply(request: RecordedRequest) -> Scripted:
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream(fix))
        return Scripted(body=openai_completion(fix))

    with FakeUpstream(reply) as upstream:
        policy = tmp_path / "team.toml"
        policy.write_text(
            '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\n\n'
            f'[targets.gpu-box]\nruntime = "openai_compat"\nlocation = "onprem"\nbase_url = "{upstream.url}/v1"\n'
            'model = "fake"\n\n[work]\nrepetitive = ["gpu-box"]\nhard = ["gpu-box"]\nescalation = ["gpu-box"]\n'
        )
        # No such file: loading it would fail the run, so a green run shows it was never loaded.
        absent = tmp_path / "not-downloaded.gguf"
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "turnout.agent.cli", "run", "make the tests pass",
             "--repo", str(calc_repo), "--model", str(absent), "--policy", str(policy),
             "--samples", "0", "--reflections", "0", "--json"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False,
        )
        chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_status"] == "tests_passed" and report["files_changed"] == ["calc.py"]
    assert chats and set(report["tokens"]["by_target"]) == {"gpu-box"}
    assert "loading" not in done.stderr
    peak_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    print(f"peak RSS of the run and its servers: {peak_mib:.0f} MiB")
    assert peak_mib < 1024  # the smallest catalog model alone maps more than this once loaded


def test_a_lazy_model_loads_once_on_its_first_request() -> None:
    loads: list[str] = []
    heard: list[str] = []

    def load() -> ScriptedModel:
        loads.append("x")
        return ScriptedModel(["one", "two"])

    lazy = LazyModel("local:tiny", load, announce=heard.append)
    assert lazy.model is None and loads == []
    request = ChatRequest(messages=[Message(role="user", content="hi")])
    assert [lazy.chat(request).text, lazy.chat(request).text] == ["one", "two"]
    assert loads == ["x"] and heard == ["loading local:tiny (the first request routed to it) ..."]


def test_chat_takes_the_repository_policys_targets_and_loads_no_local_model_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TURNOUT_CHAT_MODEL", raising=False)
    script = [Scripted.sse(openai_stream("from the gpu box")), Scripted.sse(openai_stream("picked by name"))]
    with FakeUpstream(script) as upstream:
        (project / "turnout.toml").write_text(
            '[targets.local]\nruntime = "llama_cpp"\nlocation = "local"\nmodel = "not-downloaded.gguf"\n\n'
            f'[targets.gpu-box]\nruntime = "openai_compat"\nlocation = "onprem"\nbase_url = "{upstream.url}/v1"\n'
            'model = "m"\n\n[work]\nrepetitive = ["gpu-box"]\nhard = ["gpu-box"]\nescalation = ["gpu-box"]\n'
        )
        first = main(["chat", "--json", "--no-builtin-tools", "hello"])
        out, err = capsys.readouterr()
        second = main(["chat", "--json", "--no-builtin-tools", "--model", "gpu-box", "hello"])
        picked = json.loads(capsys.readouterr().out)
        sent = [r for r in upstream.requests if r.path.endswith("/chat/completions")]

    assert first == 0 and json.loads(out)["reply"] == "from the gpu box" and "loading" not in err
    assert second == 0 and picked["reply"] == "picked by name" and picked["model"] == "gpu-box"
    assert len(sent) == 2

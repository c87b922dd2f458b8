"""A killed run resumes from its last checkpoint, against both state stores: SQLite in
`.turnout/` and a real PostgreSQL server (tests/pg.py), as LangGraph's own conformance suite runs
one set of tests against every saver. With Postgres, a run started in one checkout of a
repository resumes in another (a second machine), from the shared store alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pg
import psycopg
import pytest
from test_agent_loop import BUGGY, FIXED, GREEDY_ONLY, WRONG, calc_with, whole
from turnout.agent import loop
from turnout.agent.cli.main import main
from turnout.agent.loop import AgentConfig
from turnout.agent.run import check_resume, list_runs, run_task
from turnout.agent.state import StateStoreError, open_store
from turnout.agent.workspace import Scratch
from turnout.router.policy import StateConfig, load_policy
from turnout.runtimes.errors import PolicyError, UsageError
from turnout.runtimes.testing.fake import ScriptedModel
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Scripted,
    openai_completion,
    openai_stream,
)
from turnout.tools.tests import children_of

ROOT = Path(__file__).resolve().parent.parent
TASK = "make the tests pass"


def policy_for(store: str, directory: Path) -> Path:
    """A policy file (outside the repository) whose `[state]` is `store`."""
    path = directory / f"policy-{store}.toml"
    path.write_text(f'[state]\ncheckpointer = "{store}"\nurl_env = "TEST_STATE_URL"\n')
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store_policy(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if request.param == "postgresql":
        monkeypatch.setenv("TEST_STATE_URL", request.getfixturevalue("postgres_url"))
    return policy_for(request.param, tmp_path)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def two_checkouts(tmp_path: Path) -> tuple[Path, Path]:
    """examples/calc committed to a bare `origin`, cloned twice (two machines' checkouts)."""
    seed = tmp_path / "seed"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "calc"), str(seed)], check=True)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "calc")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(origin)], check=True)
    first, second = tmp_path / "laptop" / "calc", tmp_path / "ci" / "calc"
    for checkout in (first, second):
        subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    return first, second


def kill_on_second_try(monkeypatch: pytest.MonkeyPatch) -> None:
    real_try = Scratch.try_edits
    tries: list[int] = []

    def killed_on_the_second_try(self: Scratch, base: dict[str, str], edits: list, **options: object) -> object:
        tries.append(1)
        if len(tries) == 2:
            raise KeyboardInterrupt  # the process dies mid-verification
        return real_try(self, base, edits, **options)

    monkeypatch.setattr(Scratch, "try_edits", killed_on_the_second_try)


SAMPLED = AgentConfig(mutants=0, samples=2, reflections=0, alternatives=0)


def test_a_run_killed_while_verifying_candidates_resumes_without_losing_a_try(
    calc_repo: Path, store_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong, right = calc_with(calc_repo, WRONG), calc_with(calc_repo, FIXED)
    real_try = Scratch.try_edits
    kill_on_second_try(monkeypatch)
    model = ScriptedModel([whole("calc.py", wrong), whole("calc.py", right), whole("calc.py", wrong)])
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, calc_repo, model, config=SAMPLED, run_id="k1", policy_file=store_policy)
    assert (calc_repo / "calc.py").read_text() == wrong.replace(WRONG, BUGGY)  # untouched

    monkeypatch.setattr(Scratch, "try_edits", real_try)
    resumed_model = ScriptedModel([])  # every reply is in the checkpoint: no model call
    report = run_task(TASK, calc_repo, resumed_model, config=SAMPLED, run_id="k1", resume=True,
                      policy_file=store_policy)

    assert report.exit_status == "tests_passed" and resumed_model.requests == []
    assert [c.status for c in report.candidates][:2] == ["failed", "passed"]
    assert report.files_changed == ["calc.py"] and f"+{FIXED}" in report.diff
    assert (calc_repo / ".turnout" / "checkpoints.sqlite").exists() == ("sqlite" in store_policy.name)


def test_a_run_killed_after_landing_resumes_without_landing_twice(
    calc_repo: Path, store_policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    right = calc_with(calc_repo, FIXED)
    real_land = loop.land

    def land_then_die(*args: object) -> str:
        real_land(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # the files are written; the checkpoint is not

    monkeypatch.setattr(loop, "land", land_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, calc_repo, ScriptedModel([whole("calc.py", right)]), config=GREEDY_ONLY,
                 run_id="k2", policy_file=store_policy)
    assert (calc_repo / "calc.py").read_text() == right

    monkeypatch.setattr(loop, "land", real_land)
    report = run_task(TASK, calc_repo, ScriptedModel([]), config=GREEDY_ONLY, run_id="k2", resume=True,
                      policy_file=store_policy)

    assert report.exit_status == "tests_passed"
    assert (calc_repo / "calc.py").read_text() == right  # not patched a second time
    assert report.files_changed == ["calc.py"] and f"-{BUGGY}" in report.diff


def test_a_run_killed_in_one_checkout_resumes_in_another_from_postgres(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop, ci = two_checkouts(tmp_path)
    monkeypatch.setenv("TEST_STATE_URL", postgres_url)
    policy = policy_for("postgresql", tmp_path)
    real_try = Scratch.try_edits
    kill_on_second_try(monkeypatch)
    wrong, right = calc_with(laptop, WRONG), calc_with(laptop, FIXED)
    model = ScriptedModel([whole("calc.py", wrong), whole("calc.py", right), whole("calc.py", wrong)])
    with pytest.raises(KeyboardInterrupt):
        run_task(TASK, laptop, model, config=SAMPLED, run_id="shared1", policy_file=policy)
    meta = json.loads((laptop / ".turnout" / "runs" / "shared1" / "run.json").read_text())
    assert meta["head"] == git(laptop, "rev-parse", "HEAD") and meta["remote"].endswith("origin.git")

    monkeypatch.setattr(Scratch, "try_edits", real_try)
    assert not (ci / ".turnout").exists()
    # The other checkout lists it from the store before it has ever seen it.
    [listed] = list_runs(ci, policy_file=policy)
    assert (listed.run_id, listed.task, listed.elsewhere) == ("shared1", TASK, str(laptop))
    check_resume(ci, "shared1", policy_file=policy)  # adopted from the store: its task and stamp
    adopted = json.loads((ci / ".turnout" / "runs" / "shared1" / "run.json").read_text())
    assert adopted["task"] == TASK and adopted["head"] == meta["head"]
    resumed_model = ScriptedModel([])
    report = run_task(TASK, ci, resumed_model, config=SAMPLED, run_id="shared1", resume=True, policy_file=policy)

    assert report.exit_status == "tests_passed" and resumed_model.requests == []
    assert [c.status for c in report.candidates][:2] == ["failed", "passed"]
    assert (ci / "calc.py").read_text() == right and report.files_changed == ["calc.py"]
    assert (laptop / "calc.py").read_text() == right.replace(FIXED, BUGGY)  # the laptop's tree as it was
    with psycopg.connect(postgres_url) as conn:
        stamps = conn.execute("SELECT DISTINCT metadata->>'turnout_repo' FROM checkpoints "
                              "WHERE thread_id = 'shared1'").fetchall()
    assert sorted(s for (s,) in stamps) == sorted([str(laptop), str(ci)])  # both checkouts wrote to it


def test_a_run_killed_with_sigkill_resumes_from_a_second_clone_through_the_command_line(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop, ci = two_checkouts(tmp_path)
    policy = policy_for("postgresql", tmp_path)
    fix = whole("calc.py", calc_with(laptop, FIXED))

    def reply(request: RecordedRequest) -> Scripted:
        chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
        delay = 120.0 if len(chats) == 1 else 0.0  # the first call hangs until the kill
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream(fix), delay_s=delay)
        return Scripted(body=openai_completion(fix), delay_s=delay)

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TEST_STATE_URL": postgres_url}
    with FakeUpstream(reply) as upstream:
        common = ["--model", f"{upstream.url}/v1#fake", "--samples", "0", "--reflections", "0",
                  "--policy", str(policy), "--json"]
        first = subprocess.Popen([sys.executable, "-m", "turnout.agent.cli", "run", TASK, "--repo", str(laptop),
                                  *common], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not any(r.path.endswith("/chat/completions") for r in upstream.requests):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the run never called the model"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)  # no handler, no report: only the checkpoints remain
        _, err = first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        run_id = re.search(r"run (\S+) in ", err).group(1)  # type: ignore[union-attr]
        assert not (laptop / ".turnout" / "runs" / run_id / "report.json").exists()

        second = subprocess.run([sys.executable, "-m", "turnout.agent.cli", "run", "--resume", run_id,
                                 "--repo", str(ci), *common], capture_output=True, text=True, env=env, timeout=300,
                                check=False)

    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["run_id"] == run_id and report["exit_status"] == "tests_passed"
    assert report["files_changed"] == ["calc.py"] and f"+{FIXED}" in report["diff"]
    assert (ci / "calc.py").read_text() == calc_with(ci, FIXED)
    events = [json.loads(line)["event"] for line in
              (ci / ".turnout" / "runs" / run_id / "events.jsonl").read_text().splitlines()]
    assert "tests_before" not in events  # checkpointed on the laptop, not run again here
    assert main(["runs", "--repo", str(ci), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == run_id and listed["status"] == "tests_passed" and listed["task"] == TASK


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (the tests server's own reading of it)."""
    found, frontier = set(), [pid]
    while frontier:
        children = [child for parent in frontier for child in children_of(parent) if child not in found]
        found.update(children)
        frontier = children
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone since it was listed


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


@pytest.mark.parametrize("sandboxed", [True, False], ids=["bubblewrap", "no-sandbox"])
def test_a_run_killed_with_sigkill_while_its_candidate_is_tested_leaves_no_process_and_resumes(
    calc_repo: Path, tmp_path: Path, sandboxed: bool
) -> None:
    # The candidate's test run holds (a copy with the fix and the `hold` file sleeps), so the
    # kill lands while the tests server waits on pytest, inside the sandbox.
    (calc_repo / "hold").write_text("")
    (calc_repo / "tests" / "test_hold.py").write_text(
        "import time\nfrom pathlib import Path\n\n\ndef test_hold():\n"
        f"    if Path('hold').exists() and {FIXED.strip()!r} in Path('calc.py').read_text():\n"
        "        time.sleep(120)\n")
    fix = whole("calc.py", calc_with(calc_repo, FIXED))

    def reply(request: RecordedRequest) -> Scripted:
        if isinstance(request.body, dict) and request.body.get("stream"):
            return Scripted.sse(openai_stream(fix))
        return Scripted(body=openai_completion(fix))

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    flags = []
    if not sandboxed:  # no bwrap on PATH: the tests server runs pytest bare, in its own group
        bare = tmp_path / "bin"
        bare.mkdir()
        for tool in ("git", "sh", "env"):
            (bare / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{bare}"
        flags = ["--allow-unsandboxed"]
    with FakeUpstream(reply) as upstream:
        command = [sys.executable, "-m", "turnout.agent.cli", "run", TASK, "--repo", str(calc_repo),
                   "--model", f"{upstream.url}/v1#fake", "--samples", "0", "--reflections", "0", "--json",
                   *flags]
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 120
        def testing() -> bool:  # the model has answered and a pytest runs below the run
            asked = any(r.path.endswith("/chat/completions") for r in upstream.requests)
            return asked and any(b"-m\x00pytest" in cmdline(p) for p in descendants(first.pid) if alive(p))

        while not testing():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the candidate's tests never started"
            time.sleep(0.2)
        time.sleep(1.0)
        below = descendants(first.pid)
        first.send_signal(signal.SIGKILL)
        _, err = first.communicate(timeout=30)
        run_id = re.search(r"run (\S+) in ", err).group(1)  # type: ignore[union-attr]
        gone_by = time.monotonic() + 20
        while any(alive(p) for p in below) and time.monotonic() < gone_by:
            time.sleep(0.2)
        assert not [p for p in below if alive(p)], "processes outlived the killed run"

        (calc_repo / "hold").unlink()
        second = subprocess.run([*command[:4], "--resume", run_id, *command[5:]], capture_output=True,
                                text=True, env=env, timeout=300, check=False)

    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["exit_status"] == "tests_passed" and report["files_changed"] == ["calc.py"]
    assert f"+{FIXED}" in report["diff"] and (calc_repo / "calc.py").read_text() == calc_with(calc_repo, FIXED)


def test_a_run_of_another_repository_is_not_adopted(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop, _ = two_checkouts(tmp_path)
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(laptop), str(other)], check=True)  # origin: the laptop
    monkeypatch.setenv("TEST_STATE_URL", postgres_url)
    policy = policy_for("postgresql", tmp_path)
    run_task(TASK, laptop, ScriptedModel([whole("calc.py", calc_with(laptop, FIXED))]), config=GREEDY_ONLY,
             run_id="mine", policy_file=policy)
    with pytest.raises(UsageError, match="run mine is of the repository .*origin.git"):
        check_resume(other, "mine", policy_file=policy)
    with pytest.raises(UsageError, match="--resume nosuch: no such run"):
        check_resume(laptop, "nosuch", policy_file=policy)


def test_the_store_says_which_variable_to_set_and_never_the_password(
    tmp_path: Path, postgres_server: str
) -> None:
    config = StateConfig(checkpointer="postgresql", url_env="TEAM_STATE_URL")
    with (pytest.raises(UsageError, match="environment variable TEAM_STATE_URL, which is not set"),
          open_store(tmp_path, config, environ={})):
        pass
    wrong = postgres_server.replace(pg.PASSWORD, "wrong-" + pg.PASSWORD)
    with pytest.raises(StateStoreError) as failed, open_store(tmp_path, config, environ={"TEAM_STATE_URL": wrong}):
        pass
    message = str(failed.value)
    assert "password authentication failed" in message and "TEAM_STATE_URL" in message
    assert pg.PASSWORD not in message and "turnout:***@127.0.0.1" in message

    (tmp_path / "turnout.toml").write_text(f'[state]\ncheckpointer = "{postgres_server}"\n')
    with pytest.raises(PolicyError) as refused:
        load_policy(tmp_path)
    assert "put the URL in an environment variable" in str(refused.value)
    assert pg.PASSWORD not in str(refused.value)

"""The tests server's sandbox (tools/sandbox.py), with the real bubblewrap: what a command in it
cannot do (write outside the root, reach the network, see the server's secrets) and what it
still can (write the root, run pytest with the same result as outside).

Every check that the sandbox stops something also runs the same command with `--sandbox none`,
which shows the command would have done it: the test can fail. bubblewrap is installed by
`make install` (Debian/Ubuntu: apt-get install bubblewrap).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import CallToolResult
from turnout.agent.loop import AgentConfig
from turnout.agent.run import check_sandboxed, run_task
from turnout.runtimes.errors import UsageError
from turnout.runtimes.testing.fake import ScriptedModel
from turnout.tools.sandbox import Sandbox, bwrap_problem, command_environment, looks_secret

pytestmark = pytest.mark.anyio

CALC = Path(__file__).resolve().parent.parent / "examples" / "calc"
SECRETS = {"OPENAI_API_KEY": "sk-sandbox-test-1", "DATABASE_URL": "postgres://u:pw-sandbox-test-2@db/x",
           "GH_PAT": "ghp-sandbox-test-3"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def test_bubblewrap_works_on_this_machine() -> None:
    # The rest of this file needs it; `make install` puts it there.
    assert bwrap_problem() == "", bwrap_problem()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo project, one folder below a parent the sandbox must not write."""
    root = tmp_path_factory.mktemp("sandboxed") / "calc"
    shutil.copytree(CALC, root)
    return root


def server(repo: Path, mode: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "turnout.tools.tests", "--root", str(repo), "--sandbox", mode],
        env={**SECRETS, "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
async def boxed(repo: Path) -> AsyncIterator[Client]:
    async with Client(server(repo, "bwrap")) as client:
        yield client


@pytest.fixture(scope="module")
async def bare(repo: Path) -> AsyncIterator[Client]:
    async with Client(server(repo, "none")) as client:
        yield client


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def run(client: Client, command: str) -> str:
    result = await client.call_tool("run_tests", {"command": command, "timeout_seconds": 60})
    assert not result.is_error, text_of(result)
    return text_of(result)


async def test_each_result_and_the_instructions_say_which_sandbox_is_active(
    boxed: Client, bare: Client
) -> None:
    assert "\nsandbox: bwrap (" in await run(boxed, "true")
    assert "\nsandbox: none (turned off with --sandbox none)" in await run(bare, "true")
    assert "sandbox: bwrap" in (boxed.instructions or "")


async def test_the_root_is_writable_but_its_parent_is_not(
    boxed: Client, bare: Client, repo: Path
) -> None:
    outside = repo.parent / "escaped.txt"
    command = f"echo in > inside.txt; echo out > {outside}; echo exit=$?"
    reply = await run(boxed, command)
    assert (repo / "inside.txt").read_text() == "in\n"
    assert not outside.exists(), reply
    assert "Read-only file system" in reply
    await run(bare, command)
    assert outside.exists()  # the same command, unsandboxed, does write it
    outside.unlink()


async def test_tmp_is_private_to_the_command(boxed: Client, tmp_path: Path) -> None:
    (tmp_path / "host.txt").write_text("from the host")
    reply = await run(boxed, f"cat {tmp_path}/host.txt; echo x > /tmp/scratch && cat /tmp/scratch")
    assert "No such file or directory" in reply and "from the host" not in reply  # not the host's /tmp
    assert "\nx" in reply  # but a /tmp of its own is writable
    assert not Path("/tmp/scratch").exists()


async def test_a_loopback_listener_receives_nothing_from_the_sandbox(
    boxed: Client, bare: Client
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(3)
        port = listener.getsockname()[1]
        connect = (f"{sys.executable} -c \"import socket; socket.create_connection("
                   f"('127.0.0.1', {port}), timeout=2).sendall(b'hi')\"")
        reply = await run(boxed, connect)
        assert "exit_code: 1" in reply and "Connection refused" in reply, reply
        with pytest.raises(TimeoutError):
            listener.accept()
        await run(bare, connect)  # unsandboxed, the connection arrives
        accepted, _ = listener.accept()
        accepted.close()


async def test_the_servers_secrets_do_not_reach_the_command(boxed: Client, bare: Client) -> None:
    # Neither in its environment nor through /proc, where the server's own environment lies.
    command = "env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep sandbox-test"
    reply = await run(boxed, command)
    for name, value in SECRETS.items():
        assert value not in reply and f"{name}=" not in reply, name
    assert "PATH=" in reply
    assert SECRETS["OPENAI_API_KEY"] in await run(bare, command)  # read off the server's /proc


async def test_pytest_runs_in_the_sandbox_with_the_same_result_as_outside(
    boxed: Client, bare: Client
) -> None:
    command = f"{sys.executable} -m pytest -q -p no:cacheprovider"

    def without_timings(reply: str) -> str:
        reply = re.sub(r" in \d+\.\d+s", " in Ts", reply)
        return reply.split("\n--- output ---\n", 1)[1]

    inside, outside = await run(boxed, command), await run(bare, command)
    assert re.search(r"^summary: \d+ failed, \d+ passed in", inside, re.MULTILINE), inside
    assert without_timings(inside) == without_timings(outside)


def test_only_allowlisted_not_secret_looking_variables_pass() -> None:
    env = command_environment({"PATH": "/bin", "LANG": "C", "LC_ALL": "C", "PYTHONHASHSEED": "0",
                               "PYTHON_AUTH_TOKEN": "x", "OPENAI_API_KEY": "x", "DATABASE_URL": "x",
                               "GH_PAT": "x", "HOME": "/root", "AWS_PROFILE": "x"})
    assert set(env) == {"PATH", "LANG", "LC_ALL", "PYTHONHASHSEED", "HOME"}
    assert looks_secret("GH_PAT") and not looks_secret("PATH") and looks_secret("GITHUB_TOKEN")


def test_a_run_says_in_its_first_lines_which_sandbox_its_commands_get(calc_repo: Path) -> None:
    lines: list[str] = []
    config = AgentConfig(samples=0, reflections=0, alternatives=0, mutants=0, spec_tests=False)
    report = run_task("make the tests pass", calc_repo, ScriptedModel(["no idea"]), config=config,
                      progress=lines.append)
    assert report.exit_status  # the run ended with a report
    assert lines[1].startswith("commands run in sandbox: bwrap ("), lines[:3]
    start = json.loads(next((calc_repo / ".turnout/runs").glob("*/events.jsonl")).read_text().splitlines()[0])
    assert (start["event"], start["sandbox"]) == ("run_start", "bwrap")


def test_auto_edit_is_refused_where_no_sandbox_works_unless_allowed(
    calc_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH without bwrap on it: the detection (run again) finds no sandbox, as on a machine
    # without bubblewrap, for this process and the servers it starts alike.
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    bwrap_problem.cache_clear()
    try:
        config = AgentConfig(samples=0, reflections=0, alternatives=0, mutants=0, spec_tests=False)
        with pytest.raises(UsageError, match="no sandbox protects them here: bwrap is not installed"):
            run_task("make the tests pass", calc_repo, ScriptedModel([]), config=config)
        assert not (calc_repo / ".turnout").exists()  # refused before the run began
        lines: list[str] = []
        report = run_task("make the tests pass", calc_repo, ScriptedModel(["no idea"]), config=config,
                          progress=lines.append, allow_unsandboxed=True)
        assert report.exit_status
        assert lines[1] == "commands run in sandbox: none (bwrap is not installed (Debian/Ubuntu: " \
            "apt-get install bubblewrap))"
        # ask mode asks before the model's own commands and edits; it is not refused.
        check_sandboxed(Sandbox("none", "no bwrap"), "ask", allow_unsandboxed=False)
    finally:
        bwrap_problem.cache_clear()


def test_code_that_lives_under_tmp_stays_readable_inside_the_private_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout (or CI clone) under /tmp: its Python path must not vanish under the sandbox's
    # own empty /tmp, or no test command, trace or variant screen could start.
    import subprocess
    import tempfile

    code = Path(tempfile.mkdtemp(prefix="turnout-code-", dir="/tmp"))
    try:
        (code / "probe_mod.py").write_text("X = 'seen inside'\n")
        monkeypatch.setenv("PYTHONPATH", str(code))
        root = tmp_path / "repo"
        root.mkdir()
        argv = Sandbox("bwrap", "").wrap([sys.executable, "-c", "import probe_mod; print(probe_mod.X)"], root)
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(code)})
        assert done.stdout.strip() == "seen inside", done.stderr
    finally:
        shutil.rmtree(code, ignore_errors=True)


def test_code_a_candidate_changes_runs_its_programs_only_inside_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's change to the code under test runs `id` at import and tries to write beside
    the repository: the tests run it, and in auto-edit nobody is asked. Inside the sandbox the
    program runs and the write outside fails; the same run unsandboxed writes it."""
    outside = tmp_path / "outside"
    outside.mkdir()

    def attempt(name: str) -> tuple[Path, Path]:
        repo = tmp_path / name / "calc"
        shutil.copytree(CALC, repo)
        source = (repo / "calc.py").read_text().replace("(len(values) - 1)", "len(values)")
        hostile = ("import pathlib as _p, subprocess as _s\n_ID = _s.run(['/usr/bin/id'], capture_output=True, text=True).stdout\n"
                   "_p.Path('ran-id.txt').write_text(_ID)\n"
                   f"try:\n    _p.Path({str(outside / name)!r}).write_text(_ID)\nexcept OSError:\n    pass\n")
        model = ScriptedModel([f"calc.py\n```python\n{hostile}{source}```\n"])
        config = AgentConfig(samples=0, reflections=0, alternatives=0, mutants=0, spec_tests=False)
        report = run_task("make the tests pass", repo, model, config=config, approval_mode="auto-edit",
                          allow_unsandboxed=True)
        assert report.exit_status == "tests_passed", report.error
        return repo, outside / name

    repo, escaped = attempt("boxed")
    assert "uid=" in (repo / "ran-id.txt").read_text()  # `id` ran, in the sandbox
    assert not escaped.exists()

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no bwrap on it: no sandbox
    bwrap_problem.cache_clear()
    try:
        repo, escaped = attempt("bare")
        assert "uid=" in escaped.read_text()  # unsandboxed, the same change writes outside
    finally:
        bwrap_problem.cache_clear()

"""MCP server "tests": run the test command in the root with a timeout.

Run as `python -m turnout.tools.tests --root PATH [--test-command CMD]`; it speaks MCP over
stdio. The command runs in its own process group, which is killed as a whole on timeout (and
cleared of stragglers when the command ends); on Linux the server is a child subreaper, so
descendants that left the group (setsid, daemons) are found and killed too. Every command runs
in the sandbox of `tools/sandbox.py` (bubblewrap: the file system read-only but the root, a
private /tmp, no network) when the machine has one, `--sandbox` chooses, and each result says
which is active; a command gets only an allowlist of the environment. Long output keeps its head
and tail; pytest's summary line is parsed out. One command runs at a time.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import ToolServer, make_arg_parser, resolve_root
from turnout.tools.sandbox import SANDBOX_MODES, Sandbox, choose_sandbox, command_environment

HEAD_LINES = 50
TAIL_LINES = 150
# One overlong line (minified output, a progress bar) must not fill the reply on its own.
MAX_LINE_CHARS = 2000
MAX_TIMEOUT_SECONDS = 3600
# After the command ends or is killed, how long to wait for the output pipe to drain.
DRAIN_SECONDS = 5.0

# prctl(2) options: orphaned descendants re-parent to this process instead of init; a signal
# when the thread that started this process ends.
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1

# The process groups of the commands running now, for `die_with_parent`.
_RUNNING: set[int] = set()

_SUMMARY = re.compile(
    r"^=*\s*("
    r"(?:no tests ran|\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed"
    r"|warnings?|rerun))"
    r"(?:, \d+ \w+)*"
    r" in \d+(?:\.\d+)?s(?: \([0-9:.]+\))?"
    r")\s*=*$"
)

# Run as a script in the project's test process (it imports pytest, which this server does not).
TRACE_RUNNER = Path(__file__).with_name("trace_runner.py")

RUNS_COMMANDS = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)


def default_test_command() -> str:
    return f"{shlex.quote(sys.executable)} -m pytest -q"


def parse_summary(lines: list[str]) -> str:
    """pytest's final summary line ("1 failed, 2 passed in 0.05s"), or "" if there is none."""
    for line in reversed(lines):
        match = _SUMMARY.match(line.strip())
        if match:
            return match.group(1)
    return ""


class OutputKeeper:
    """Keeps the first HEAD_LINES and last TAIL_LINES lines of a stream, counting the rest."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.total = 0

    def add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " ... (line cut)"
        self.total += 1
        if len(self.head) < HEAD_LINES:
            self.head.append(line)
        else:
            self.tail.append(line)

    def drain(self, stream: IO[bytes]) -> None:
        # readline with a limit so one endless line cannot exhaust memory.
        while chunk := stream.readline(65536):
            self.add(chunk)

    def lines(self) -> list[str]:
        omitted = self.total - len(self.head) - len(self.tail)
        if omitted <= 0:
            return self.head + list(self.tail)
        return self.head + [f"... {omitted} lines omitted ..."] + list(self.tail)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def become_subreaper() -> bool:
    """Make orphaned descendants of our commands re-parent to this process, not to init.

    A command can leave its process group with setsid; as our child's orphan it stays findable
    (and killable) only if this process is a subreaper. Linux only; elsewhere the process group
    kill is all there is.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def die_with_parent() -> None:
    """The agent that started this server can die without a word (kill -9, out of memory): its
    pipe closes, but a command the server is waiting on would run on to its timeout, and the
    test run would outlive the agent as an orphan. Linux then sends SIGTERM here (prctl
    PDEATHSIG), and the running commands and their leftovers go down with this server."""
    if not sys.platform.startswith("linux"):
        return

    def stop(signum: int, _frame: object) -> None:
        for pgid in list(_RUNNING):
            kill_group(pgid)
        kill_orphans()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def children_of(parent: int) -> list[int]:
    """Process ids whose parent is `parent`, read from /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def kill_orphans() -> None:
    """Kill and reap every remaining child of this server: only commands' leftovers remain,
    since run_tests runs one command at a time."""
    if not Path("/proc/self/stat").exists():
        return
    for _ in range(20):  # each round may expose grandchildren re-parented to us
        children = children_of(os.getpid())
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait for `pid` to exit without reaping it; True if it exited within `timeout`.

    Leaving it unreaped keeps its pid, which is also the process group id, from being reused
    before we signal the group.
    """
    deadline = time.monotonic() + timeout
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def run_command(
    command: str, cwd: Path, timeout: float, sandbox: Sandbox, writable: tuple[Path, ...] = ()
) -> tuple[int, bool, list[str]]:
    """Run `command` through the shell in `sandbox`, with `cwd` (the root) and `writable`
    writable; return (exit code, timed out, kept output lines)."""
    try:
        process = subprocess.Popen(
            sandbox.wrap(["/bin/sh", "-c", command], cwd, writable),
            cwd=cwd,
            env=command_environment(),
            # stdin and stdout of this server carry the MCP protocol: the command gets neither.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(f"could not start the command {command!r}: {exc}") from None
    assert process.stdout is not None
    _RUNNING.add(process.pid)  # its process group: it leads one (start_new_session)
    keeper = OutputKeeper()
    reader = threading.Thread(target=keeper.drain, args=(process.stdout,), daemon=True)
    reader.start()
    exited = wait_unreaped(process.pid, timeout)
    # Killing the group after a normal exit too clears background children that would
    # otherwise outlive the run and hold the output pipe open.
    kill_group(process.pid)
    exit_code = process.wait()
    _RUNNING.discard(process.pid)
    # Children that left the group (setsid, daemonised) were re-parented to this server, the
    # subreaper: end them too.
    kill_orphans()
    reader.join(DRAIN_SECONDS)
    # A process that left the group (setsid) can still hold the pipe; closing it under the
    # blocked reader would hang, so the daemon reader keeps it instead.
    if not reader.is_alive():
        process.stdout.close()
    return (exit_code if exited else -1), not exited, keeper.lines()


def command_text(value: str, what: str) -> str:
    """`value` if it can be a command line: no NUL byte, nothing a file system cannot encode."""
    if "\0" in value:
        raise ToolError(f"{what} contains a NUL byte, which no command line can hold; remove it")
    try:
        os.fsencode(value)
    except UnicodeEncodeError as exc:
        raise ToolError(
            f"{what} holds {exc.object[exc.start:exc.end]!a}, a lone surrogate no command "
            "line can hold; remove it"
        ) from None
    return value


def format_result(
    exit_code: int, timed_out: bool, lines: list[str], timeout: float, sandbox: Sandbox
) -> str:
    if timed_out:
        lines = lines + [
            f"... timed out after {timeout:g} s: the command and its child processes were killed"
        ]
    return "\n".join(
        [
            f"exit_code: {exit_code}",
            f"timed_out: {'true' if timed_out else 'false'}",
            f"summary: {parse_summary(lines)}",
            f"sandbox: {sandbox.describe()}",
            "--- output ---",
            *lines,
        ]
    )


def create_server(root: Path, test_command: str, sandbox: Sandbox | None = None) -> ToolServer:
    sandbox = sandbox or choose_sandbox("auto")
    server = ToolServer(
        "tests",
        instructions=f"Run the test suite (default command: {test_command}) in {root}. "
        f"Commands run in sandbox: {sandbox.describe()}.",
    )

    one_at_a_time = threading.Lock()

    @server.tool(annotations=RUNS_COMMANDS, structured_output=False)
    def run_tests(command: str | None = None, timeout_seconds: int = 300) -> str:
        """Run the tests (or `command`, a shell command) in the repository root.

        Returns `exit_code:`, `timed_out:` and `summary:` lines (pytest's final summary),
        then `--- output ---` and the head and tail of the combined output. A failing test
        run is a normal result, not an error.
        """
        if command is not None and not command.strip():
            raise ToolError("command is empty; omit it to run the default test command")
        if command is not None:
            command_text(command, "command")
        if not 1 <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise ToolError(
                f"timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}, "
                f"got {timeout_seconds}"
            )
        # One command at a time: the sweep for orphans after a command kills every child.
        with one_at_a_time:
            exit_code, timed_out, lines = run_command(
                command or test_command, root, timeout_seconds, sandbox
            )
        return format_result(exit_code, timed_out, lines, timeout_seconds, sandbox)

    @server.tool(annotations=RUNS_COMMANDS, structured_output=False)
    def trace_test(test: str, timeout_seconds: int = 120) -> str:
        """Run one pytest test (a node id such as `tests/test_x.py::test_name`) and return what
        the code under test did while it ran: each call with its arguments, each line with the
        values it assigned, each return value. Test files are not traced. Needs pytest in this
        server's Python; the trace is capped at a few thousand characters.
        """
        if not test.strip() or test.startswith("-"):
            raise ToolError("test must be a pytest node id such as tests/test_x.py::test_name")
        command_text(test, "test")
        if not 1 <= timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise ToolError(
                f"timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}, got {timeout_seconds}"
            )
        with tempfile.TemporaryDirectory(prefix="turnout-trace-") as tmp, one_at_a_time:
            out = Path(tmp) / "trace.txt"
            command = " ".join(shlex.quote(a) for a in (sys.executable, str(TRACE_RUNNER), str(out), test))
            # The trace file's folder is the one place outside the root the command may write.
            exit_code, timed_out, lines = run_command(
                command, root, timeout_seconds, sandbox, writable=(Path(tmp),)
            )
            trace = out.read_text(encoding="utf-8") if out.exists() else ""
        if timed_out:
            raise ToolError(f"the traced test did not finish in {timeout_seconds} s")
        if not trace.strip():
            tail = "\n".join(lines[-20:])
            raise ToolError(f"no trace: the code under test did not run (exit code {exit_code}):\n{tail}")
        return trace

    return server


def main() -> None:
    parser = make_arg_parser("tests", "MCP server: run the tests inside a root.")
    parser.add_argument(
        "--test-command",
        default=default_test_command(),
        help="shell command run_tests runs by default (default: this Python's pytest -q)",
    )
    parser.add_argument(
        "--sandbox",
        choices=SANDBOX_MODES,
        default="auto",
        help="where commands run: bwrap (bubblewrap, or refuse to start), none (unprotected), "
        "auto (bubblewrap when it works here; the default)",
    )
    args = parser.parse_args()
    try:
        sandbox = choose_sandbox(args.sandbox)
    except ValueError as exc:
        parser.error(str(exc))
    become_subreaper()
    die_with_parent()
    create_server(resolve_root(args.root), args.test_command, sandbox).run()


if __name__ == "__main__":
    main()

"""MCP server "git": status, diff, log and show of the repository at the root, read only.

Run as `python -m turnout.tools.git --root PATH`; it speaks MCP over stdio. It runs the `git`
command line with a timeout (the whole process group is killed when it runs out) and keeps git
inside the root: the root must hold the repository itself (git does not look above it), paths
are confined like every other server's, and revisions cannot pass as options.

A repository is untrusted input. Its `.git/config` can name programs that git runs on its own
(`core.fsmonitor` on status, `diff.external` and textconv drivers on diff, a pager), so every
call turns those off on the command line, which wins over the repository's config.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import confine, make_arg_parser, relative, resolve_root

GIT_TIMEOUT_SECONDS = 30
MAX_OUTPUT_CHARS = 100_000
MAX_LOG_ENTRIES = 200

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# Settings that make git run programs named by the repository, switched off on every call.
SAFE_CONFIG = (
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.hooksPath=/dev/null",
    "diff.external=",
    "color.ui=false",
    "protocol.allow=never",
)
# A revision: a name, a hash, HEAD~2, main^, v1.0..v2.0, stash@{0}; never an option.
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./~^@{}:+-]{0,199}")


def git_environment(root: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_")  # GIT_DIR and friends would point git elsewhere
    }
    env.update(
        GIT_CEILING_DIRECTORIES=str(root.parent),  # the repository is the root, not a parent
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",  # status must not write .git/index behind a user's back
        GIT_CONFIG_NOSYSTEM="1",
        GIT_PAGER="cat",
        LC_ALL="C",
    )
    return env


def run_git(root: Path, args: list[str], timeout: float = GIT_TIMEOUT_SECONDS) -> str:
    """Run `git ARGS` in the root; return stdout, or raise a ToolError with git's message."""
    command = ["git", "--no-pager"]
    for setting in SAFE_CONFIG:
        command += ["-c", setting]
    command += args
    try:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=git_environment(root),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolError("git is not installed on this machine; install git") from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.communicate()
        raise ToolError(f"git {args[0]} did not finish within {timeout:g}s and was stopped") from None
    text = out.decode("utf-8", errors="replace")
    if process.returncode != 0:
        message = err.decode("utf-8", errors="replace").strip() or f"exit code {process.returncode}"
        if "not a git repository" in message:
            message = "the root is not a git repository (git init creates one)"
        raise ToolError(f"git {args[0]} failed: {message}")
    if len(text) > MAX_OUTPUT_CHARS:
        cut = len(text) - MAX_OUTPUT_CHARS
        text = text[:MAX_OUTPUT_CHARS] + f"\n... ({cut} more characters not shown; narrow the path)"
    return text


def revision(value: str, what: str = "revision") -> str:
    if not _REVISION.fullmatch(value):
        raise ToolError(
            f"{what} {value!r} is not a revision; give a branch, tag or commit hash such as "
            "HEAD, main or HEAD~1"
        )
    return value


def pathspec(root: Path, path: str | None) -> list[str]:
    """The `-- path` part of a command, confined to the root; the whole root by default."""
    if path is None or path in ("", "."):
        return ["--", "."]
    return ["--", relative(root, confine(root, path))]


def create_server(root: Path) -> MCPServer:
    server = MCPServer(
        "git",
        instructions=f"Read the git status, diffs and history of the repository at {root}.",
    )

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_status() -> str:
        """Show the branch and the changed, staged and untracked files (git status --short)."""
        text = run_git(root, ["status", "--short", "--branch", "--untracked-files=all", "--", "."])
        return text or "(clean)"

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_diff(path: str | None = None, staged: bool = False, base: str | None = None) -> str:
        """Show changes as a unified diff: the working tree against the index (default), the
        index against HEAD (staged=true), or the working tree against `base` (a revision).
        """
        args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
        if staged:
            args.append("--cached")
        if base is not None:
            args.append(revision(base, "base"))
        text = run_git(root, args + pathspec(root, path))
        return text or "(no changes)"

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_log(max_count: int = 20, path: str | None = None, revision_range: str | None = None) -> str:
        """Show recent commits, newest first, one per line: hash, date, author, subject."""
        if not 1 <= max_count <= MAX_LOG_ENTRIES:
            raise ToolError(f"max_count must be between 1 and {MAX_LOG_ENTRIES}, got {max_count}")
        args = ["log", f"--max-count={max_count}", "--format=%h %ad %an: %s", "--date=short"]
        if revision_range is not None:
            args.append(revision(revision_range, "revision_range"))
        text = run_git(root, args + pathspec(root, path))
        return text or "(no commits)"

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_show(revision_name: str = "HEAD", path: str | None = None) -> str:
        """Show one commit: its message and its diff (limited to `path` if given)."""
        args = ["show", "--no-ext-diff", "--no-textconv", "--no-color", "--format=fuller"]
        args.append(revision(revision_name, "revision_name"))
        return run_git(root, args + pathspec(root, path))

    return server


def main() -> None:
    parser = make_arg_parser("git", "MCP server: git status, diff, log and show inside a root.")
    args = parser.parse_args()
    create_server(resolve_root(args.root)).run()


if __name__ == "__main__":
    main()

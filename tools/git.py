"""MCP server "git": status, diff, log and show of the repository at the root, read only.

Run as `python -m turnout.tools.git --root PATH`; it speaks MCP over stdio. It runs the `git`
command line with a timeout (the whole process group is killed when it runs out) and keeps git
inside the root: the root must hold the repository itself (git does not look above it), paths
are confined like every other server's, and revisions cannot pass as options.

A repository is untrusted input. Its config can name programs that git runs on its own:
`core.fsmonitor` on status; clean filters (a `.gitattributes` `filter=NAME` with `[filter
"NAME"] clean = ...`) on status and diff; `diff.external`, external diff and textconv drivers on
diff and show; `gpg.program` when `log.showSignature` is on; a pager; hooks; a transport (`ext::`)
when git lazily fetches a missing object of a partial clone; and a submodule's own config. Every
call overrides those settings in git's command scope, which wins over every config file: the
fixed ones in SAFE_CONFIG, and the filter drivers by name, read from the config just before the
call (a filter cannot be switched off as a whole, only driver by driver). Network transports
are refused through GIT_ALLOW_PROTOCOL, which a repository's `protocol.<name>.allow` cannot beat,
and submodules are ignored.

Git is also pinned to the root: `--git-dir` and `--work-tree` are given on every call, after
checking that the repository lives inside the root. A `.git` file or symlink that sends git to
another repository, a `commondir` or object alternates outside the root, and a `core.worktree`
naming another directory are refused with an error that says so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from turnout.tools._common import ToolServer, confine, make_arg_parser, resolve_root

GIT_TIMEOUT_SECONDS = 30
MAX_OUTPUT_CHARS = 100_000
MAX_LOG_ENTRIES = 200

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# Settings that make git run programs named by the repository, switched off on every call.
SAFE_CONFIG = (
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.hooksPath", "/dev/null"),
    ("diff.external", ""),
    ("log.showSignature", "false"),  # verifying a signature runs gpg.program
    ("diff.ignoreSubmodules", "all"),  # a submodule has its own config, filters included
    ("status.submoduleSummary", "false"),
    ("submodule.recurse", "false"),
    ("color.ui", "false"),
    ("protocol.allow", "never"),
)
# What blanks one filter driver: with no command left, git passes the content through.
FILTER_SETTINGS = (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false"))
# A filter driver's name as `git config --list` spells its keys: filter.NAME.VARIABLE.
_FILTER_KEY = re.compile(r"filter\.(.+)\.[A-Za-z0-9-]+", re.DOTALL)
# Bytes of a `.git` file read to find its `gitdir:` line; a real one is one short line.
MAX_GITFILE_BYTES = 4096
# A revision: a name, a hash, HEAD~2, main^, v1.0..v2.0, stash@{0}; never an option.
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./~^@{}:+-]{0,199}")


def git_environment(root: Path, config: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """The environment git runs in: the server's, without GIT_* variables, with `config`
    passed in git's command scope (GIT_CONFIG_COUNT, safe for any driver name, unlike -c)."""
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
        # An allow list that names no protocol: no transport at all, whatever the repository's
        # protocol.<name>.allow says (a partial clone would fetch a missing object through one).
        GIT_ALLOW_PROTOCOL="none",
        GIT_PAGER="cat",
        LC_ALL="C",
    )
    for index, (key, value) in enumerate(config or []):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(len(config or []))
    return env


def _refuse_outside(root: Path, what: str, target: Path, fix: str) -> None:
    if not target.is_relative_to(root):
        raise ToolError(
            f"{what} points git at {target}, outside the root {root}; the git server reads only "
            f"a repository kept inside the root, so it refuses this one ({fix})"
        )


def _read_small(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_GITFILE_BYTES).decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc.strerror or exc}") from None


def find_git_dir(root: Path) -> Path:
    """The repository's git directory, checked to lie inside the root with everything git
    reads through it (a linked worktree's `commondir`, object alternates); else a ToolError."""
    dot_git = root / ".git"
    if not os.path.lexists(dot_git):
        raise ToolError("the root is not a git repository (git init creates one)")
    fix = "run turnout on the main checkout of that repository"
    if dot_git.is_file() and not dot_git.is_symlink():
        first = _read_small(dot_git).split("\n", 1)[0].strip()
        if not first.startswith("gitdir:"):
            raise ToolError(f"{dot_git} is a file without a 'gitdir:' line; it is not a repository")
        git_dir = (root / first.removeprefix("gitdir:").strip()).resolve()
        _refuse_outside(root, f"the .git file ({first!r})", git_dir, fix)
    else:
        git_dir = dot_git.resolve()
        _refuse_outside(root, ".git (a symbolic link)", git_dir, fix)
    common = git_dir
    if (git_dir / "commondir").is_file():
        named = _read_small(git_dir / "commondir").strip()
        common = (git_dir / named).resolve()
        _refuse_outside(root, f"{git_dir}/commondir ({named!r})", common, fix)
    objects = (common / "objects").resolve()
    _refuse_outside(root, "the object directory", objects, fix)
    alternates = objects / "info" / "alternates"
    if alternates.is_file():
        for line in _read_small(alternates).splitlines():
            if line.strip() and not line.startswith("#"):
                _refuse_outside(
                    root, f"{alternates} ({line.strip()!r})", (objects / line.strip()).resolve(),
                    "git repack -a -d, then deleting that file, makes the repository self-contained",
                )
    return git_dir


def repository_config(root: Path, git_dir: Path) -> list[tuple[str, str]]:
    """Every (key, value) of the config git would read for this repository, in order; reading
    it runs nothing."""
    command = ["git", "--git-dir", str(git_dir), "config", "--list", "-z"]
    data = _run(root, command, git_environment(root), GIT_TIMEOUT_SECONDS, "config")
    entries: list[tuple[str, str]] = []
    for entry in data.decode("utf-8", errors="surrogateescape").split("\0"):
        if entry:
            key, _, value = entry.partition("\n")
            entries.append((key, value))
    return entries


def safe_config(root: Path, git_dir: Path) -> list[tuple[str, str]]:
    """SAFE_CONFIG plus every filter driver the config names, blanked; refuses a
    `core.worktree` that is not the root."""
    settings = list(SAFE_CONFIG)
    drivers: list[str] = []
    worktree: str | None = None
    for key, value in repository_config(root, git_dir):
        if key == "core.worktree":
            worktree = value
        elif (match := _FILTER_KEY.fullmatch(key)) and match.group(1) not in drivers:
            drivers.append(match.group(1))
    if worktree is not None and (git_dir / worktree).resolve() != root:
        raise ToolError(
            f"the repository's core.worktree is {worktree!r}, so git would read the files of "
            f"{(git_dir / worktree).resolve()} instead of the root {root}; the git server "
            "refuses it (git config --unset core.worktree removes the setting)"
        )
    for driver in drivers:
        settings += [(f"filter.{driver}.{name}", value) for name, value in FILTER_SETTINGS]
    return settings


def run_git(root: Path, args: list[str], timeout: float = GIT_TIMEOUT_SECONDS) -> str:
    """Run `git ARGS` on the repository at the root, with every program it could run switched
    off; return stdout, or raise a ToolError with git's message."""
    git_dir = find_git_dir(root)
    env = git_environment(root, safe_config(root, git_dir))
    command = ["git", "--no-pager", "--git-dir", str(git_dir), "--work-tree", str(root), *args]
    return truncated(_run(root, command, env, timeout, args[0]).decode("utf-8", errors="replace"))


def _run(root: Path, command: list[str], env: dict[str, str], timeout: float, what: str) -> bytes:
    try:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
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
        raise ToolError(f"git {what} did not finish within {timeout:g}s and was stopped") from None
    if process.returncode != 0:
        message = err.decode("utf-8", errors="replace").strip() or f"exit code {process.returncode}"
        if "not a git repository" in message:
            message = "the root is not a git repository (git init creates one)"
        raise ToolError(f"git {what} failed: {message}")
    return out


def truncated(text: str) -> str:
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
    # git takes the name as it is on disk, not as the tools show it (see relative).
    return ["--", confine(root, path).relative_to(root).as_posix() or "."]


def create_server(root: Path) -> ToolServer:
    server = ToolServer(
        "git",
        instructions=f"Read the git status, diffs and history of the repository at {root}.",
    )

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_status() -> str:
        """Show the branch and the changed, staged and untracked files (git status --short)."""
        args = ["status", "--short", "--branch", "--untracked-files=all", "--ignore-submodules=all"]
        text = run_git(root, [*args, "--", "."])
        return text or "(clean)"

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def git_diff(path: str | None = None, staged: bool = False, base: str | None = None) -> str:
        """Show changes as a unified diff: the working tree against the index (default), the
        index against HEAD (staged=true), or the working tree against `base` (a revision).
        """
        args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color", "--ignore-submodules=all"]
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
        args = ["show", "--no-ext-diff", "--no-textconv", "--no-color", "--ignore-submodules=all"]
        args.append("--format=fuller")
        args.append(revision(revision_name, "revision_name"))
        return run_git(root, args + pathspec(root, path))

    return server


def main() -> None:
    parser = make_arg_parser("git", "MCP server: git status, diff, log and show inside a root.")
    args = parser.parse_args()
    create_server(resolve_root(args.root)).run()


if __name__ == "__main__":
    main()

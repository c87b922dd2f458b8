"""The git server on a hostile repository: it runs no program the repository names and reads
nothing outside the root. Each case first shows that plain git falls for it, then that the
server does not. The server is driven in memory (`Client(server)`), with the real git.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import CallToolResult
from turnout.tools import edit, git

pytestmark = pytest.mark.anyio

SECRET = "TOP-SECRET-VALUE"

Connect = Callable[[Path], Awaitable[Client]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=repo, capture_output=True, text=True, check=False,
        env={key: value for key, value in os.environ.items() if not key.startswith("GIT_")},
    )


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    run(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    run(path, "add", ".")
    assert run(path, "commit", "-q", "-m", "first").returncode == 0
    return path


def evil_program(tmp_path: Path) -> tuple[Path, Path]:
    """A program that leaves a marker file when it runs, and passes its input through (so
    it works as a filter); returns (program, marker)."""
    marker = tmp_path / "RAN"
    program = tmp_path / "evil.sh"
    program.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\ncat\n', encoding="utf-8")
    program.chmod(0o755)
    return program, marker


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[Path], Awaitable[Client]]]:
    """Opens an in-memory client of a git server on a root; all are closed after the test."""
    async with AsyncExitStack() as stack:

        async def open_client(root: Path) -> Client:
            return await stack.enter_async_context(Client(git.create_server(root.resolve())))

        yield open_client


async def call(client: Client, tool: str, **arguments: object) -> tuple[bool, str]:
    result = await client.call_tool(tool, arguments)
    return bool(result.is_error), text_of(result)


def dirty_same_size(path: Path, text: str) -> None:
    """Change a tracked file without changing its size, with an old mtime: git must hash
    it, through its clean filter, to know whether it changed."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, (1_000_000_000, 1_000_000_000))


async def test_a_clean_filter_named_by_the_repository_never_runs(tmp_path: Path, connect: Connect) -> None:
    program, marker = evil_program(tmp_path)
    repo = make_repo(tmp_path / "repo", {".gitattributes": "*.txt filter=x\n", "a.txt": "hi\n"})
    run(repo, "config", "filter.x.clean", str(program))
    run(repo, "config", "filter.x.process", str(program))
    run(repo, "config", "filter.x.required", "true")
    dirty_same_size(repo / "a.txt", "ho\n")
    run(repo, "status")
    assert marker.exists(), "plain git status runs the filter: the hazard is real"
    marker.unlink()

    client = await connect(repo)
    error, status = await call(client, "git_status")
    assert not error and " M a.txt" in status
    error, diff = await call(client, "git_diff")
    assert not error and "-hi\n+ho" in diff
    error, against_head = await call(client, "git_diff", base="HEAD")
    assert not error and "+ho" in against_head
    error, shown = await call(client, "git_show")
    assert not error and "first" in shown
    assert not marker.exists()


async def test_a_filter_in_a_submodule_s_own_config_never_runs(tmp_path: Path, connect: Connect) -> None:
    program, marker = evil_program(tmp_path)
    source = make_repo(tmp_path / "source", {".gitattributes": "*.txt filter=y\n", "b.txt": "hi\n"})
    repo = make_repo(tmp_path / "repo", {"x.txt": "x\n"})
    added = run(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(source), "sm")
    assert added.returncode == 0, added.stderr
    run(repo, "commit", "-q", "-m", "submodule")
    run(repo / "sm", "config", "filter.y.clean", str(program))
    dirty_same_size(repo / "sm" / "b.txt", "ho\n")
    run(repo, "diff")
    assert marker.exists(), "plain git diff runs the submodule's filter: the hazard is real"
    marker.unlink()

    client = await connect(repo)
    assert not (await call(client, "git_status"))[0]
    assert not (await call(client, "git_diff"))[0]
    assert not marker.exists()


async def test_log_and_show_never_run_the_signature_program(tmp_path: Path, connect: Connect) -> None:
    program, marker = evil_program(tmp_path)
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    tree = run(repo, "rev-parse", "HEAD^{tree}").stdout.strip()
    signed = (
        f"tree {tree}\nauthor Ada <ada@example.com> 1 +0000\ncommitter Ada <ada@example.com> 1 "
        "+0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\n"
        "signed\n"
    )
    (tmp_path / "commit").write_text(signed, encoding="utf-8")
    commit = run(repo, "hash-object", "-t", "commit", "-w", str(tmp_path / "commit")).stdout.strip()
    run(repo, "update-ref", "refs/heads/main", commit)
    run(repo, "config", "gpg.program", str(program))
    run(repo, "config", "log.showSignature", "true")
    run(repo, "log")
    assert marker.exists(), "plain git log runs gpg.program: the hazard is real"
    marker.unlink()

    client = await connect(repo)
    error, log = await call(client, "git_log")
    assert not error and "signed" in log
    assert not (await call(client, "git_show"))[0]
    assert not marker.exists()


async def test_a_partial_clone_cannot_fetch_through_a_command_transport(
    tmp_path: Path, connect: Connect
) -> None:
    marker = tmp_path / "RAN"
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    for key, value in [
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "origin"),
        ("remote.origin.url", f"ext::sh -c touch% {marker}"),
        ("remote.origin.promisor", "true"),
        ("protocol.ext.allow", "always"),  # beats a plain protocol.allow=never
    ]:
        run(repo, "config", key, value)
    missing = "1234567890123456789012345678901234567890"
    run(repo, "-c", "protocol.allow=never", "show", missing)
    assert marker.exists(), "a lazy fetch runs the ext:: command: the hazard is real"
    marker.unlink()

    client = await connect(repo)
    error, message = await call(client, "git_show", revision_name=missing)
    assert error and "failed" in message
    assert not marker.exists()


async def test_a_core_worktree_outside_the_root_is_refused(tmp_path: Path, connect: Connect) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.txt").write_text(SECRET + "\n", encoding="utf-8")
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    run(repo, "config", "core.worktree", str(outside))
    assert SECRET in run(repo, "diff").stdout, "plain git diff shows the outside file"

    client = await connect(repo)
    for tool in ("git_status", "git_diff", "git_show", "git_log"):
        error, message = await call(client, tool)
        assert error and "core.worktree" in message and str(outside) in message, message
        assert SECRET not in message


async def test_a_gitdir_file_that_points_at_another_repository_is_refused(
    tmp_path: Path, connect: Connect
) -> None:
    other = make_repo(tmp_path / "other", {"secret.txt": SECRET + "\n"})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").write_text(f"gitdir: {other / '.git'}\n", encoding="utf-8")
    assert SECRET in run(repo, "show").stdout, "plain git show reads the other repository"

    client = await connect(repo)
    for tool in ("git_show", "git_log", "git_status", "git_diff"):
        error, message = await call(client, tool)
        assert error and ".git file" in message and "outside the root" in message, message
        assert SECRET not in message


async def test_a_git_symlink_commondir_or_alternates_leading_outside_is_refused(
    tmp_path: Path, connect: Connect
) -> None:
    other = make_repo(tmp_path / "other", {"secret.txt": SECRET + "\n"})
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".git").symlink_to(other / ".git")
    common = make_repo(tmp_path / "common", {"a.txt": "a\n"})
    (common / ".git" / "commondir").write_text(str(other / ".git") + "\n", encoding="utf-8")
    borrowed = make_repo(tmp_path / "borrowed", {"a.txt": "a\n"})
    alternates = borrowed / ".git" / "objects" / "info" / "alternates"
    alternates.write_text(str(other / ".git" / "objects") + "\n", encoding="utf-8")

    for repo, what in [(linked, "symbolic link"), (common, "commondir"), (borrowed, "alternates")]:
        client = await connect(repo)
        error, message = await call(client, "git_show")
        assert error and what in message and "outside the root" in message, message
        assert SECRET not in message


async def test_the_server_works_on_an_ordinary_repository_and_a_worktree_equal_to_the_root(
    tmp_path: Path, connect: Connect
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    run(repo, "config", "core.worktree", "..")  # the root itself, spelt relative to .git
    (repo / "a.txt").write_text("b\n", encoding="utf-8")
    client = await connect(repo)
    error, diff = await call(client, "git_diff")
    assert not error and "-a\n+b" in diff


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("write_file", {"path": ".git/config", "content": "[core]\n\tfsmonitor = ./evil.sh\n"}),
        ("write_file", {"path": ".git", "content": "gitdir: /elsewhere/.git\n"}),
        ("write_file", {"path": "sub/.git/hooks/pre-commit", "content": "#!/bin/sh\n"}),
        ("write_file", {"path": ".GIT/config", "content": "x\n"}),
        ("write_file", {"path": "gitlink/config", "content": "x\n"}),  # a link to .git
        ("replace_in_file", {"path": ".git/config", "old": "bare = false", "new": "bare = true"}),
        ("apply_patch", {"patch": "--- /dev/null\n+++ b/.git/info/attributes\n@@ -0,0 +1 @@\n+x\n"}),
        ("apply_patch", {"patch": "--- a/.git/config\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"}),
    ],
)
async def test_the_edit_server_never_writes_under_git(
    tmp_path: Path, tool: str, arguments: dict[str, object]
) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (repo / "gitlink").symlink_to(repo / ".git")
    (repo / "sub" / ".git").mkdir(parents=True)
    before = {path: path.read_bytes() for path in (repo / ".git").rglob("*") if path.is_file()}
    async with Client(edit.create_server(repo.resolve())) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error and "git's own data" in text_of(result), text_of(result)
    after = {path: path.read_bytes() for path in (repo / ".git").rglob("*") if path.is_file()}
    assert after == before
    assert not (repo / "sub" / ".git" / "hooks").exists()

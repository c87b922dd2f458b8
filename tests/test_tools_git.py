"""The "git" MCP server over stdio: status, diff, log and show of the repository at the root,
and nothing above it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from turnout.agent.host import McpHost, builtin_servers


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=repo, check=True, capture_output=True,
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("git") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n", encoding="utf-8")
    git(root, "add", "calc.py")
    git(root, "commit", "-q", "-m", "add calc")
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    (root / "sub").mkdir()
    (root / "sub" / "new.txt").write_text("new\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def host(repo: Path) -> Iterator[McpHost]:
    with McpHost(builtin_servers(repo, git=True)[3:]) as started:
        yield started


def test_status_shows_the_branch_and_changed_and_untracked_files(host: McpHost) -> None:
    status = host.call_tool("git_status", {})
    assert not status.is_error
    assert status.content.splitlines() == ["## main", " M calc.py", "?? sub/new.txt"]


def test_diff_shows_the_working_tree_change_and_can_be_limited_to_a_path(host: McpHost) -> None:
    diff = host.call_tool("git_diff", {})
    assert "-    return a - b\n+    return a + b" in diff.content
    assert host.call_tool("git_diff", {"path": "sub"}).content == "(no changes)"
    assert host.call_tool("git_diff", {"staged": True}).content == "(no changes)"


def test_log_and_show_read_the_history(host: McpHost) -> None:
    log = host.call_tool("git_log", {"max_count": 5})
    assert log.content.strip().endswith("Ada: add calc")
    show = host.call_tool("git_show", {"revision_name": "HEAD"})
    assert "add calc" in show.content and "+    return a - b" in show.content
    missing = host.call_tool("git_show", {"revision_name": "no-such-branch"})
    assert missing.is_error and "no-such-branch" in missing.content


def test_a_root_inside_a_repository_does_not_reach_the_repository_above(repo: Path) -> None:
    with McpHost(builtin_servers(repo / "sub", git=True)[3:]) as inner:
        status = inner.call_tool("git_status", {})
    assert status.is_error
    assert "not a git repository" in status.content

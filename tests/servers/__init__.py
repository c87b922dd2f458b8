"""MCP servers the tests run: where the third-party ones are installed, and our misbehaving one.

`make test` installs `mcp-server-git` into .venv and the npm servers into build/npm; a test that
finds one missing fails with the command that installs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from turnout.agent.host import ServerSpec

ROOT = Path(__file__).resolve().parents[2]
NPM_BIN = ROOT / "build" / "npm" / "node_modules" / ".bin"
MISBEHAVING = Path(__file__).resolve().parent / "misbehaving.py"


def installed(path: Path) -> str:
    if not path.exists():
        raise AssertionError(f"{path} is not installed; run `make test-servers` (part of `make test`)")
    return str(path)


def mcp_server_git(repo: Path, name: str = "git") -> ServerSpec:
    command = Path(sys.executable).parent / "mcp-server-git"
    return ServerSpec(name=name, command=installed(command), args=["--repository", str(repo)])


def server_filesystem(*directories: Path, name: str = "fs") -> ServerSpec:
    command = installed(NPM_BIN / "mcp-server-filesystem")
    return ServerSpec(name=name, command=command, args=[str(d) for d in directories])


def server_everything(name: str = "everything") -> ServerSpec:
    command = installed(NPM_BIN / "mcp-server-everything")
    return ServerSpec(name=name, command=command, args=["stdio"])


def misbehaving(name: str = "bad", *args: str, timeout: float | None = None) -> ServerSpec:
    return ServerSpec(
        name=name, command=sys.executable, args=[str(MISBEHAVING), *args], timeout=timeout
    )



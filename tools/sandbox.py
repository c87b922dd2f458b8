"""The sandbox the tests server runs every command in: bubblewrap, where the machine has it.

Under bubblewrap (`bwrap`, the distribution's package) a command sees the whole file system
read-only except the server's root, which stays writable, and a private, empty /tmp; it has no
network (a namespace with only its own loopback), its own process ids, and it dies with the
server. Wherever it runs, sandboxed or not, a command gets only an allowlist of the server's
environment variables (`command_environment`), so API keys, database URLs and tokens never
reach it.

Whether bubblewrap works is found out once, by running it: a `bwrap` on PATH can still fail
where the kernel or a container forbids namespaces.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SANDBOX_MODES = ("auto", "bwrap", "none")

# Variables a command may see (names, or prefixes ending in "_" or "PYTHON"): what finding
# programs, the locale and Python's own settings need, and nothing a credential hides in.
ALLOWED_NAMES = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
                 "VIRTUAL_ENV", "PYTHONPATH"}
ALLOWED_PREFIXES = ("LC_", "PYTHON")
# Even an allowed name is dropped when it looks like it holds a secret (PYTHON_API_TOKEN).
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH")

# What bwrap is asked for, minus the root and the command: used by the probe and every run.
BWRAP_BASE = [
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--tmpfs", "/tmp",
    "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
    "--die-with-parent",
]
PROBE_SECONDS = 10


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a credential (OPENAI_API_KEY, GH_PAT)."""
    upper = name.upper()
    # "PAT" only as a whole word: PATH is no secret, GH_PAT is.
    return any(marker in upper for marker in SECRET_MARKERS) or "PAT" in upper.split("_")


def command_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a command gets: the allowlist out of `environ` (the server's), minus
    anything secret-looking, with this Python's folder first on PATH."""
    environ = dict(os.environ) if environ is None else environ
    env = {
        name: value
        for name, value in environ.items()
        if (name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)) and not looks_secret(name)
    }
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p)
    return env


@dataclass(frozen=True)
class Sandbox:
    """How commands run: `kind` is "bwrap" or "none"; `note` says why there is none."""

    kind: str
    note: str = ""

    def describe(self) -> str:
        """One line for the server's instructions and each run_tests result."""
        if self.kind == "bwrap":
            return "bwrap (read-only file system but the root, private /tmp, no network)"
        return f"none ({self.note})" if self.note else "none"

    def wrap(self, argv: list[str], root: Path, writable: tuple[Path, ...] = ()) -> list[str]:
        """`argv` as it is to be started: inside bubblewrap, with `root` and `writable`
        writable, or unchanged when there is no sandbox."""
        if self.kind != "bwrap":
            return argv
        binds: list[str] = []
        # A root under /tmp would vanish under the private /tmp: its folder is shown again
        # read-only (the caller's files beside it, such as a scratch copy's variant spec,
        # stay readable as they would be anywhere else), unless that folder is /tmp itself.
        parent = root.parent
        if _under_tmp(parent) and not _is_tmp(parent):
            binds += ["--ro-bind", str(parent), str(parent)]
        # So would this Python, its environment and turnout's own scripts (the trace and
        # variant runners) when they live under /tmp (a checkout there, a CI clone).
        for path in own_code_paths():
            if _under_tmp(path) and not _is_tmp(path) and not path.is_relative_to(parent):
                binds += ["--ro-bind", str(path), str(path)]
        for path in (root, *writable):
            binds += ["--bind", str(path), str(path)]
        return ["bwrap", *BWRAP_BASE, *binds, "--chdir", str(root), "--setenv", "TMPDIR", "/tmp",
                "--", *argv]


def own_code_paths() -> list[Path]:
    """What a command started by a tools server must be able to read: the interpreter's
    environment, turnout's own package folder and the PYTHONPATH it was given."""
    paths = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
             Path(__file__).resolve().parent.parent]
    paths += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    found: list[Path] = []
    for path in paths:
        resolved = path.resolve()
        if resolved.exists() and not any(resolved.is_relative_to(f) for f in found):
            found = [f for f in found if not f.is_relative_to(resolved)] + [resolved]
    return found


def _tmp_dirs() -> set[Path]:
    return {Path("/tmp"), Path(tempfile.gettempdir()).resolve()}


def _is_tmp(path: Path) -> bool:
    return path.resolve() in _tmp_dirs()


def _under_tmp(path: Path) -> bool:
    return Path("/tmp") in (path.resolve(), *path.resolve().parents)


@functools.cache
def bwrap_problem() -> str:
    """"" if bubblewrap runs a command here, else what went wrong (once per process)."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap is Linux only"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run(["bwrap", *BWRAP_BASE, "--", "true"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=PROBE_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run: {exc}"
    if probe.returncode != 0:
        detail = probe.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return f"bwrap cannot create its namespaces here: {detail[-1] if detail else probe.returncode}"
    return ""


def choose_sandbox(mode: str) -> Sandbox:
    """The sandbox for `mode`: "bwrap" demands it (ValueError saying why it cannot run),
    "none" runs commands bare, "auto" takes bubblewrap when it works."""
    if mode not in SANDBOX_MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; choose one of {', '.join(SANDBOX_MODES)}")
    if mode == "none":
        return Sandbox("none", "turned off with --sandbox none")
    problem = bwrap_problem()
    if not problem:
        return Sandbox("bwrap")
    if mode == "bwrap":
        raise ValueError(f"--sandbox bwrap was asked for, but {problem}")
    return Sandbox("none", problem)

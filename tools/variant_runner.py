"""Screen many variations of the code against one pytest test, fast: which of them pass it?

Run as a script, with the project's own Python and pytest, in the root of a scratch copy:

    python variant_runner.py SPEC_FILE

SPEC_FILE is JSON: {"test": NODE_ID, "timeout_seconds": N, "variants": [{"path": REL, "text":
FILE_TEXT}, ...]}. Each variant is written in place, the test runs in a forked child of this
process (pytest is imported once and the plugins installed beside it are not loaded, so a variant
costs a fork and a collection, not a Python start), and the file is put back as it was, whatever happened. A child that runs past the
timeout (a variation can loop forever) is killed. The last line printed is
`variants-passed: I,J,...`, the indexes of the variants under which the test passed.

It changes files while it runs, so only ever run it on a copy the caller owns, never on the
user's tree. Like trace_runner.py, it runs inside the project's Python and imports pytest,
which the tool servers themselves never do.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def run_one(test: str, timeout: int) -> bool:
    import pytest  # once, in the parent: every child inherits it loaded

    pid = os.fork()
    if pid == 0:  # the child: quiet, bounded, one test
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.dont_write_bytecode = True  # a variant's bytecode must never be cached
            signal.alarm(timeout)
            code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", test])
            os._exit(0 if int(code) == 0 else 1)
        except BaseException:  # noqa: BLE001 - whatever the variant does, the child only exits
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def drop_cached_bytecode(path: Path) -> None:
    """A variant of the same size written in the same second as a cached .pyc would be read
    as that .pyc: remove the file's cached bytecode before each run."""
    cache = path.parent / "__pycache__"
    for pyc in cache.glob(f"{path.stem}.*.pyc") if cache.is_dir() else []:
        pyc.unlink(missing_ok=True)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: variant_runner.py SPEC_FILE", file=sys.stderr)
        return 2
    # The plugins installed beside pytest (this Python's, not the project's) can take seconds
    # to load, per run; a project's own plugins still load from its conftest.py.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    root = Path.cwd().resolve()
    test, timeout = str(spec["test"]), int(spec.get("timeout_seconds", 10))
    passed: list[int] = []
    for index, variant in enumerate(spec["variants"]):
        path = (root / variant["path"]).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue
        original = path.read_bytes()
        try:
            path.write_text(variant["text"], encoding="utf-8")
            drop_cached_bytecode(path)
            if run_one(test, timeout):
                passed.append(index)
        finally:
            path.write_bytes(original)
            drop_cached_bytecode(path)
    print("variants-passed: " + ",".join(str(i) for i in passed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

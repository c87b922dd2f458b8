"""A GGUF behind `python -m llama_cpp.server`, the real OpenAI-compatible server, for benchmarks
that need a model in another process (a stand-in for a team's own box, or for Aider's backend).

Its OpenMP threads wait passively: a second llama.cpp process on the same cores would otherwise
spin on them between batches and slow the one that is working several times over.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from turnout.runtimes.errors import ModelError

READY_SECONDS = 180
# What `python -m llama_cpp.server` imports beyond llama-cpp-python itself (its [server] extra).
SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_model(
    model_path: Path, *, threads: int, alias: str = "local-model", n_ctx: int = 8192
) -> Iterator[str]:
    """Serve `model_path` on a free loopback port for the block; yields the API root
    (`http://127.0.0.1:PORT/v1`). The server is stopped when the block ends."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(
            f"llama_cpp.server needs llama-cpp-python's server extra ({', '.join(missing)} missing), "
            "which turnout's dev extra installs: `pip install -e '.[dev]'` (make install) or "
            "`pip install 'llama-cpp-python[server]'`"
        )
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
         "--model_alias", alias],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(server, base_url, alias)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_serving(server: subprocess.Popen[bytes], base_url: str, alias: str) -> None:
    """Until the server lists the model: listening alone is not enough, the model loads after."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ModelError(
                f"llama_cpp.server exited ({server.returncode}) before it served {alias}; run "
                f"`{sys.executable} -m llama_cpp.server --model PATH` by hand to see why"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                listed = [m.get("id") for m in json.load(reply).get("data", [])]
            if alias in listed:
                return
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise ModelError(f"llama_cpp.server did not serve {alias} within {READY_SECONDS} s")

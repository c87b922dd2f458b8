"""A private PostgreSQL server for the suite: the distribution's binaries, a data directory and
a socket directory of its own under /tmp, a free loopback port, a password (so a test can check
that no error says it), stopped and deleted when the session ends. As root (CI), the server runs
as `nobody`: initdb refuses to run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

USER = "turnout"
PASSWORD = "pg-secret-7f3a9c"  # the URL's password; tests assert that no message carries it


class NoPostgres(RuntimeError):
    pass


def server_bindir() -> Path:
    """Where initdb, pg_ctl and postgres are: $TURNOUT_PG_BIN, Debian's newest, or PATH."""
    candidates = [os.environ.get("TURNOUT_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    found = shutil.which("initdb")
    candidates += [str(Path(found).parent)] if found else []
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    raise NoPostgres(
        "the suite needs a PostgreSQL server (initdb, pg_ctl, postgres) and found none in "
        "/usr/lib/postgresql/*/bin or on PATH; `make test` installs it (apt-get install -y postgresql), "
        "or set TURNOUT_PG_BIN to the directory that holds them"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """Start a server; yield the URL of its `postgres` database (as the superuser `turnout`)."""
    bindir = server_bindir()
    root = Path(tempfile.mkdtemp(prefix="turnout-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    (root / "pw").write_text(PASSWORD)
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse root; `nobody` owns the server's files instead.
        as_user = ["runuser", "-u", "nobody", "--"]
        for path in (root, sockets, root / "pw"):
            shutil.chown(path, "nobody")
    port = free_port()

    def run(*argv: str) -> None:
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise NoPostgres(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(root / "pw"),
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name

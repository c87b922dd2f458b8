"""Where a run's graph state (its LangGraph checkpoints) is kept, and which repository a run is of.

The policy's `[state]` picks the store. `sqlite` (the default): `REPO/.turnout/checkpoints.sqlite`,
this machine only. `postgresql`: a database a team shares, its URL read from the environment
variable the policy names (`url_env`), so the secret never sits in a committed file; a run
started on one machine resumes there from another checkout of the same repository.

Every checkpoint carries the run's metadata (`RunStamp`): its task, model, start time, and the
repository it is of (path, remote URL, head commit), so a checkout that has never seen a run can
adopt it from a shared store (`adopt_run`) and refuse one of another repository.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel, ValidationError
from turnout.router.atrest import touch_private
from turnout.router.policy import StateConfig
from turnout.runtimes.errors import TurnoutError, UsageError

_CONNECT_TIMEOUT_S = 10


class StateStoreError(TurnoutError):
    """The run's state store cannot be reached or used (never says the URL's password)."""


class RunStamp(BaseModel):
    """What every checkpoint of a run says about it (LangGraph checkpoint metadata: strings)."""

    turnout_task: str
    turnout_model: str
    turnout_started: str
    turnout_repo: str  # the resolved path of the checkout the run started in
    turnout_remote: str = ""  # `origin`'s URL (or the first remote's); "" when none
    turnout_head: str = ""  # the head commit when the run started; "" outside git


class RepoIdentity(BaseModel):
    path: str
    remote: str = ""
    head: str = ""


def repo_identity(repo: Path) -> RepoIdentity:
    """Which repository `repo` is: its path, its remote's URL and head commit when it is in git."""
    repo = repo.resolve()
    top = _git(repo, "rev-parse", "--show-toplevel")
    if not top:
        return RepoIdentity(path=str(repo))
    remotes = _git(repo, "remote").split()
    remote = "origin" if "origin" in remotes else (remotes[0] if remotes else "")
    return RepoIdentity(
        path=str(repo),
        remote=redact_url(_git(repo, "remote", "get-url", remote)) if remote else "",
        head=_git(repo, "rev-parse", "--verify", "-q", "HEAD"),
    )


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@contextlib.contextmanager
def open_store(
    repo: Path, config: StateConfig, environ: Mapping[str, str] | None = None
) -> Iterator[BaseCheckpointSaver[Any]]:
    """The checkpointer `config` names, open until the block ends."""
    if config.checkpointer == "sqlite":
        conn = sqlite3.connect(touch_private(repo / ".turnout" / "checkpoints.sqlite"), check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()
        return
    with _open_postgres(config, os.environ if environ is None else environ) as saver:
        yield saver


@contextlib.contextmanager
def _open_postgres(config: StateConfig, environ: Mapping[str, str]) -> Iterator[BaseCheckpointSaver[Any]]:
    url = environ.get(config.url_env, "")
    if not url:
        raise UsageError(
            f"[state] checkpointer = 'postgresql' reads the database URL from the environment variable "
            f"{config.url_env}, which is not set; set it (e.g. export {config.url_env}="
            "postgresql://USER:PASSWORD@HOST:5432/DBNAME), or remove [state] to keep state in .turnout/"
        )
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError:
        raise UsageError(
            "[state] checkpointer = 'postgresql' needs LangGraph's Postgres saver: "
            "pip install 'turnout[postgres]'"
        ) from None
    where = f"the state store in {config.url_env} ({redact_url(url)})"
    try:
        conn = psycopg.Connection.connect(
            url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=_CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        raise StateStoreError(f"cannot connect to {where}: {_scrub(str(exc), url)}") from None
    try:
        with conn:
            saver = PostgresSaver(conn)
            saver.setup()  # creates or migrates its tables; a no-op once they are current
            yield saver
    except psycopg.Error as exc:
        raise StateStoreError(f"{where} failed: {_scrub(str(exc), url)}") from None


def store_errors() -> tuple[type[Exception], ...]:
    """What a shared store raises when it fails mid-run (its driver's errors; none without one)."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (for errors and logs)."""
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def _scrub(message: str, url: str) -> str:
    message = message.replace(url, redact_url(url)).strip()
    match = re.search(r"://[^/@:]*:([^/@]*)@", url) or re.search(r"(?i)password=([^&\s]*)", url)
    return message.replace(match.group(1), "***") if match and match.group(1) else message


def run_config(run_id: str, stamp: RunStamp, recursion_limit: int) -> dict[str, Any]:
    """The LangGraph config of a run: its thread, and its stamp on every checkpoint it writes."""
    return {"configurable": {"thread_id": run_id}, "metadata": stamp.model_dump(),
            "recursion_limit": recursion_limit}


def last_state(saver: BaseCheckpointSaver[Any], run_id: str) -> dict[str, Any]:
    """The run's state at its last checkpoint; {} when it has none."""
    snapshot = saver.get({"configurable": {"thread_id": run_id}})
    return dict(snapshot["channel_values"]) if snapshot else {}


def stored_stamp(saver: BaseCheckpointSaver[Any], run_id: str) -> RunStamp | None:
    """The stamp of the run's last checkpoint in the store, None when the store has no such run."""
    found = saver.get_tuple({"configurable": {"thread_id": run_id}})
    if found is None:
        return None
    try:
        return RunStamp.model_validate(dict(found.metadata))
    except ValidationError:
        return None


def stored_runs(saver: BaseCheckpointSaver[Any], here: RepoIdentity, limit: int = 200) -> list[tuple[str, RunStamp, str]]:
    """(run id, stamp, exit status or "") of the runs of this repository in the store, newest
    checkpoint first: those of any checkout of the same remote, or of this path when there is
    none. A team's shared store lists the runs its other machines started."""
    wanted = {"turnout_remote": here.remote} if here.remote else {"turnout_repo": here.path}
    found: dict[str, tuple[str, RunStamp, str]] = {}
    for checkpoint in saver.list(None, filter=wanted, limit=limit * 20):
        run_id = checkpoint.config["configurable"]["thread_id"]
        if run_id in found:
            continue
        try:
            stamp = RunStamp.model_validate(dict(checkpoint.metadata))
        except ValidationError:
            continue
        status = checkpoint.checkpoint.get("channel_values", {}).get("exit_status") or ""
        found[run_id] = (run_id, stamp, str(status))
        if len(found) >= limit:
            break
    return list(found.values())


def check_same_repository(stamp: RunStamp, here: RepoIdentity, run_id: str) -> str:
    """Refuse a run of another repository; say so when this checkout is at another commit."""
    if stamp.turnout_remote and here.remote and stamp.turnout_remote != here.remote:
        raise UsageError(
            f"run {run_id} is of the repository {stamp.turnout_remote}, and {here.path} is a checkout "
            f"of {here.remote}; resume it in a checkout of {stamp.turnout_remote}"
        )
    if stamp.turnout_head and here.head and stamp.turnout_head != here.head:
        return (f"run {run_id} started at commit {stamp.turnout_head[:12]}; this checkout is at "
                f"{here.head[:12]} (its tries were checked against the other commit)")
    return ""

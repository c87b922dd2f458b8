"""Undo a run: every file it wrote in the user's tree back to the bytes it held before.

`RecordWrites` wraps the host a run writes the user's tree through. Before an edit tool call,
each file the call names is read as bytes (or noted as missing, with the directories a new file
needs); after the call, the file's sha256 is noted as what the run left there. The record is
`<run dir>/changes.json`, rewritten atomically after every call that changed a file, so a run
killed right after landing can still be undone. A file a call named but did not change (a
refused approval, a failed patch) is left out.

`undo_run` restores them all, or none: when any file no longer holds what the run left (someone
edited it since), nothing is written and the files are listed.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from turnout.agent.wrappers import edited_paths
from turnout.router.atrest import write_private
from turnout.runtimes.base import ToolHost, ToolResult, ToolSpec

CHANGES_FILE = "changes.json"


class FileChange(BaseModel):
    """One file a run wrote: what it held before (base64 bytes; None: it did not exist), the
    directories the run had to create for it, and the sha256 of what the run left (None: gone)."""

    before: str | None
    new_dirs: list[str] = []
    after_sha256: str | None


class ChangeRecord(BaseModel):
    run_id: str
    files: dict[str, FileChange] = {}
    undone: bool = False


UndoStatus = Literal["restored", "nothing_to_undo", "already_undone", "changed_since"]


class UndoResult(BaseModel):
    """What `turnout undo` did, for people and for `--json`."""

    run_id: str
    status: UndoStatus
    restored: list[str] = []  # files written back to their earlier bytes
    removed: list[str] = []  # files the run created, deleted again
    changed_since: list[str] = []  # files edited after the run: nothing was undone


def sha256_or_none(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def load_record(run_dir: Path) -> ChangeRecord | None:
    path = run_dir / CHANGES_FILE
    if not path.is_file():
        return None
    return ChangeRecord.model_validate_json(path.read_text(encoding="utf-8"))


def save_record(run_dir: Path, record: ChangeRecord) -> None:
    # 0600 like the rest of .turnout/: it holds the files' bytes from before the run.
    write_private(run_dir / CHANGES_FILE, record.model_dump_json(indent=2))


class RecordWrites:
    """A `ToolHost` wrapper that keeps, for each file the run's edit calls write, its bytes from
    before the first write. A resumed run keeps the first record: what a file held before the
    run, not before the resumed half."""

    def __init__(self, host: ToolHost, repo: Path, run_dir: Path, run_id: str) -> None:
        self.host = host
        self.repo = repo.resolve()
        self.run_dir = run_dir
        self.record = load_record(run_dir) or ChangeRecord(run_id=run_id)

    def list_tools(self) -> list[ToolSpec]:
        return self.host.list_tools()

    def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        paths = [rel for rel in map(self._relative, edited_paths(name, arguments)) if rel]
        fresh = {rel: self._snapshot(rel) for rel in paths if rel not in self.record.files}
        result = self.host.call_tool(name, arguments)
        changed = False
        for rel in paths:
            after = sha256_or_none(self.repo / rel)
            if rel in fresh:
                before = fresh[rel]
                before_sha = None if before.before is None else hashlib.sha256(
                    base64.b64decode(before.before)).hexdigest()
                if after == before_sha:
                    continue  # named but not written: nothing to undo
                self.record.files[rel] = before.model_copy(update={"after_sha256": after})
                changed = True
            elif self.record.files[rel].after_sha256 != after:
                self.record.files[rel].after_sha256 = after
                changed = True
        if changed:
            save_record(self.run_dir, self.record)
        return result

    def _relative(self, path: str) -> str:
        """`path` as the edit server reads it (relative to the root, or absolute inside it), or
        "" when it is outside the repository: the server refuses that, and it writes nothing."""
        resolved = (self.repo / path).resolve()
        return resolved.relative_to(self.repo).as_posix() if resolved.is_relative_to(self.repo) else ""

    def _snapshot(self, rel: str) -> FileChange:
        path = self.repo / rel
        try:
            return FileChange(before=base64.b64encode(path.read_bytes()).decode(), after_sha256=None)
        except FileNotFoundError:
            missing = []
            parent = path.parent
            while parent != self.repo and not parent.exists():
                missing.append(parent.relative_to(self.repo).as_posix())
                parent = parent.parent
            return FileChange(before=None, new_dirs=missing, after_sha256=None)


def undo_run(repo: Path, run_id: str) -> UndoResult:
    """Put back every file run `run_id` wrote in `repo`, if each still holds what the run left."""
    run_dir = repo / ".turnout" / "runs" / run_id
    record = load_record(run_dir)
    if record is None or not record.files:
        return UndoResult(run_id=run_id, status="nothing_to_undo")
    if record.undone:
        return UndoResult(run_id=run_id, status="already_undone")
    changed = sorted(rel for rel, change in record.files.items()
                     if sha256_or_none(repo / rel) != change.after_sha256)
    if changed:
        return UndoResult(run_id=run_id, status="changed_since", changed_since=changed)
    restored, removed = [], []
    for rel, change in sorted(record.files.items()):
        path = repo / rel
        if change.before is None:
            path.unlink(missing_ok=True)
            for directory in change.new_dirs:  # deepest first, as recorded
                try:
                    (repo / directory).rmdir()
                except OSError:
                    break  # not empty: something else lives there now
            removed.append(rel)
        else:
            write_bytes_atomic(path, base64.b64decode(change.before))
            restored.append(rel)
    record.undone = True
    save_record(run_dir, record)
    return UndoResult(run_id=run_id, status="restored", restored=restored, removed=removed)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace the file's bytes in one step, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.undo")
    tmp.write_bytes(data)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


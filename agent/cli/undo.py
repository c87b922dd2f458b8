"""`turnout undo [RUN_ID|last]`: put back every file a run changed, as it was before."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from turnout.agent.run import check_repo, process_alive, read_meta, resolve_run
from turnout.agent.undo import UndoResult, undo_run
from turnout.runtimes.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    undo = sub.add_parser(
        "undo", help="put back every file a run changed, byte for byte",
        description="Restore each file run RUN_ID wrote in the repository to the bytes it held "
        "before the run, and delete the files it created. When any of them changed again since "
        "the run, nothing is written and those files are listed (exit 1).",
    )
    undo.add_argument("run", nargs="?", default="last", metavar="RUN_ID|last",
                      help="the run to undo (default: last, the most recent; `turnout runs` lists them)")
    undo.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    undo.add_argument("--json", action="store_true", help="print one JSON object")
    undo.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    repo = check_repo(args.repo)
    run_id = resolve_run(repo, args.run, "undo")
    meta = read_meta(repo / ".turnout" / "runs" / run_id)
    if meta and meta.active and process_alive(meta.pid):
        raise UsageError(f"run {run_id} is still running (process {meta.pid}); stop it first "
                         "(Ctrl-C, or kill it), then undo")
    result = undo_run(repo, run_id)
    print(json.dumps(result.model_dump(), indent=2) if args.json else render(result))
    return 1 if result.status == "changed_since" else 0


def render(result: UndoResult) -> str:
    head = f"turnout undo {result.run_id}: "
    if result.status == "nothing_to_undo":
        return head + "the run changed no file; nothing to undo"
    if result.status == "already_undone":
        return head + "already undone"
    if result.status == "changed_since":
        return head + (
            "nothing was written: these files changed after the run, and undoing would lose "
            "that work: " + ", ".join(result.changed_since)
            + "; put them back as the run left them (or handle them by hand) and undo again"
        )
    lines = [head + f"put back {len(result.restored) + len(result.removed)} file(s)"]
    lines += [f"  restored {rel}" for rel in result.restored]
    lines += [f"  removed  {rel} (the run created it)" for rel in result.removed]
    return "\n".join(lines)

"""`turnout runs`: the runs of a repository, newest first, with how each ended."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from turnout.agent.cli.args import positive_int
from turnout.agent.cli.output import runs_table
from turnout.agent.run import check_repo, list_runs


def add_parser(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser(
        "runs", help="list the recent runs in a repository and how each ended",
        description="The runs kept in REPO/.turnout/runs, newest first: status (the report's "
        "exit status, `running`, or `killed` when its process died before writing a report), "
        "model calls, the files it changed and its task. `turnout run --resume RUN_ID|last` "
        "carries one on; `turnout undo RUN_ID|last` puts back what it changed.",
    )
    runs.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    runs.add_argument("--limit", type=positive_int, default=10, metavar="N",
                      help="show the N most recent runs (default: 10)")
    runs.add_argument("--json", action="store_true", help="print a JSON list")
    runs.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    repo = check_repo(args.repo)
    listings = list_runs(repo)[: args.limit]
    if args.json:
        print(json.dumps([r.model_dump() for r in listings], indent=2))
    else:
        print(runs_table(str(repo), listings))
    return 0

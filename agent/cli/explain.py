"""`turnout explain`: where a request would be routed and why, without calling a model."""

from __future__ import annotations

import argparse
from pathlib import Path

from turnout.router.explain import build_request, explain, render_decision
from turnout.router.policy import load_policy


def add_parser(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser(
        "explain",
        help="show where a request would be routed and why, without calling a model",
        description="Run the router's decision on a prompt, files or a recorded request: "
        "the scan, the taint of labelled paths, the work class and every target's verdict.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout explain \"plan a fix for the failing test\"\n"
        "  turnout explain --file data/customers/export.csv --json",
    )
    exp.add_argument("prompt", nargs="?", default=None, help="the user's message")
    exp.add_argument("--file", type=Path, action="append", default=[], metavar="PATH",
                     help="a file the request carries, as if read through the read_file tool (repeatable)")
    exp.add_argument("--request", type=Path, default=None, metavar="FILE.json",
                     help="a recorded chat request (JSON with `messages`)")
    exp.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    exp.add_argument("--policy", type=Path, default=None, metavar="FILE", help="policy file")
    exp.add_argument("--json", action="store_true", help="print the decision as JSON")
    exp.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    policy = load_policy(args.repo, args.policy)
    decision = explain(policy, args.repo, build_request(args.repo, args.prompt, args.file, args.request))
    print(decision.model_dump_json(indent=2) if args.json else render_decision(decision))
    return 0

"""`turnout eval toolcalls|loops`: measure the guards on data, not anecdotes."""

from __future__ import annotations

import argparse
from pathlib import Path

from turnout.agent.bfcl import CATEGORIES, DEFAULT_CATEGORIES
from turnout.agent.cli.args import command_group
from turnout.agent.cli.output import loops_report, progress, toolcalls_table
from turnout.agent.compose import MODEL_FORMS
from turnout.agent.evals.loops import eval_loops
from turnout.agent.evals.toolcalls import TARGETS, eval_toolcalls


def add_parser(sub: argparse._SubParsersAction) -> None:
    esub = command_group(
        sub, "eval", "EVAL",
        help="measure the guards: tool-call validity on BFCL, loop detection on traces",
        description="Evaluations of turnout's guards. `toolcalls` runs the Berkeley Function "
        "Calling Leaderboard's single-turn questions through a model (the in-process one by "
        "default, or any other a model spec names) with and without turnout's parser, repairs "
        "and grammar; `loops` runs the shipped trace corpus through the loop detector.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout eval toolcalls --category simple_python --limit 50\n"
        "  turnout eval toolcalls --model ollama/qwen2.5-coder:1.5b --limit 200 --record ollama.jsonl\n"
        "  turnout eval loops --json",
    )
    tc = esub.add_parser("toolcalls", help="BFCL single-turn: valid-call rate and AST match rate")
    tc.add_argument("--category", action="append", choices=list(CATEGORIES), default=None,
                    help="BFCL category (repeatable; default: simple_python and multiple). "
                    "irrelevance: questions no offered function answers, asked with "
                    "tool_choice auto; a reply without a call is right")
    tc.add_argument("--limit", type=int, default=None, metavar="N", help="first N cases of each category")
    tc.add_argument("--skip", type=int, default=0, metavar="N",
                    help="leave out the first N cases of each category (with --limit M: cases "
                    "N+1 to N+M), e.g. to score cases a threshold was not chosen on")
    tc.add_argument("--target", action="append", choices=list(TARGETS), default=None,
                    help="what to run (repeatable; default: turnout and plain)")
    tc.add_argument("--model", default="qwen2.5-coder-1.5b", metavar="SPEC",
                    help=f"the model under test: {MODEL_FORMS} (default: qwen2.5-coder-1.5b, "
                    "in process)")
    tc.add_argument("--tool-choice", default="required",
                    help="tool_choice for the turnout targets: required (default), auto; "
                    "the plain target sends none, as a client that does not know turnout would")
    tc.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads")
    tc.add_argument("--check-calls-below", type=float, default=None, metavar="P",
                    help="in process, under tool_choice auto: after the model calls a tool in "
                    "answer to the user, ask it whether the call is right, and answer in words "
                    "when its Yes is below P (0: ask, never act; default: the runtime's setting)")
    tc.add_argument("--record", type=Path, default=None, metavar="FILE.jsonl",
                    help="append each case's outcome to this file as it is scored; "
                    "cases already in it are not run again (resume a run cut short)")
    tc.add_argument("--json", action="store_true", help="print the summary as JSON")
    tc.set_defaults(handler=toolcalls)
    lp = esub.add_parser("loops", help="the trace corpus: recall, false positives, steps to detect")
    lp.add_argument("--json", action="store_true", help="print the full report as JSON")
    lp.set_defaults(handler=loops)


def toolcalls(args: argparse.Namespace) -> int:
    report = eval_toolcalls(
        args.category or list(DEFAULT_CATEGORIES), args.limit, args.target or ["turnout", "plain"],
        args.model, tool_choice=args.tool_choice, threads=args.threads, record=args.record,
        progress=progress, check_calls_below=args.check_calls_below, skip=args.skip,
    )
    print(report.model_dump_json(indent=2) if args.json else toolcalls_table(report))
    return 0


def loops(args: argparse.Namespace) -> int:
    report = eval_loops()
    print(report.model_dump_json(indent=2) if args.json else loops_report(report))
    ok = (report.caught_in_time == report.looping and report.healthy_stopped == 0
          and report.degenerate_aborted == report.degenerate and report.healthy_replies_aborted == 0)
    return 0 if ok else 1

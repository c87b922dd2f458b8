"""`turnout run TASK`: the agent on a repository until its tests pass."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from turnout.agent import compose
from turnout.agent.approvals import MODES, terminal_asker
from turnout.agent.cli.args import DRAFTER_HELP, DRAFTERS, positive_int
from turnout.agent.cli.output import RunView, color_wanted, print_report, say
from turnout.agent.loop import AgentConfig
from turnout.agent.run import (
    RunInterrupted,
    RunReport,
    check_has_tests,
    check_repo,
    render,
    resolve_run,
    resumed_task,
    run_task,
)
from turnout.router.policy import load_policy
from turnout.runtimes.base import ChatModel
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models

DONE = {"tests_passed", "done", "already_passing"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="work on a task in a repository until its tests pass",
        description="Run the agent on TASK in a repository. It runs the tests, shows the model "
        "the code they exercise (the modules the failing tests import, the files the traceback "
        "and the task name) and asks for a fix. Each proposed change is tried on a scratch copy "
        "of the repository and tested there; the first that passes lands in your tree as one "
        "patch, and if none does your tree is left as it was. When the tests already pass, TASK "
        "is done the same way, keeping them green. Prints the diff and a report; the run log is "
        "kept in REPO/.turnout/runs/RUN_ID/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n  turnout run "make the tests pass" --repo examples/calc --json\n'
        "  turnout run --resume last --repo examples/calc   # carry on after Ctrl-C or a kill\n"
        "  turnout undo last --repo examples/calc           # put back what the run changed",
    )
    run.add_argument("task", nargs="?", default=None,
                     help="what to do, in plain words (with --resume: the run's own task)")
    run.add_argument("--repo", type=Path, default=Path("."), help="repository to work in (default: .)")
    run.add_argument("--max-steps", type=positive_int, default=12, metavar="N",
                     help="model calls allowed before giving up (default: 12)")
    run.add_argument("--samples", type=int, default=4, metavar="N",
                     help="when the first (greedy) change fails its tests, sample N more, each "
                     "tried on a scratch copy (default: 4; 0 = greedy only)")
    run.add_argument("--reflections", type=int, default=1, metavar="N",
                     help="rounds that show the model what its best try still fails (default: 1)")
    run.add_argument("--model", default=os.environ.get("TURNOUT_MODEL", models.DEFAULT_MODEL),
                     metavar="SPEC",
                     help=f"the model that answers for the policy's local targets, on this machine: "
                     f"{compose.MODEL_FORMS} (default: {models.DEFAULT_MODEL}; env TURNOUT_MODEL)")
    run.add_argument("--test-command", default=None, metavar="CMD",
                     help="command that runs the tests (default: python -m pytest -q)")
    run.add_argument("--threads", type=positive_int, default=None, metavar="N",
                     help="CPU threads for the in-process model (default: all cores)")
    run.add_argument("--n-gpu-layers", type=int, default=0, metavar="N",
                     help="layers to offload on a GPU build of llama.cpp (-1 = all; default 0)")
    run.add_argument("--resume", metavar="RUN_ID", default=None,
                     help="carry on with an interrupted run from its last completed step; `last` "
                     "is the most recent run (`turnout runs` lists them)")
    run.add_argument("--approval-mode", choices=MODES, default=None,
                     help="which of the model's tool calls run without asking (default: the "
                     "policy's [approvals] mode, else auto-edit: reads, edits and the test command "
                     "run; any other command is asked on the terminal, refused without one)")
    run.add_argument("--allow-unsandboxed", action="store_true",
                     help="run in auto-edit or full-auto even where no sandbox (bubblewrap) "
                     "protects the commands the run executes; refused otherwise")
    run.add_argument("--policy", type=Path, default=None, metavar="FILE",
                     help="the policy file (targets, labels, which work goes where) instead of the "
                     "repository's turnout.toml or [tool.turnout]")
    run.add_argument("--drafter", choices=DRAFTERS, default="suffix",
                     help=DRAFTER_HELP)
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    run.add_argument("--no-color", action="store_true",
                     help="plain lines on a terminal too: no colour, no live status line (also: NO_COLOR=1)")
    run.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    repo = check_repo(args.repo)  # before loading a 1 GB model, not after
    run_id = resolve_run(repo, args.resume, "--resume", args.policy) if args.resume else None
    if run_id:
        task = resumed_task(repo, run_id, args.task)
    elif args.task:
        task = args.task
    else:
        raise UsageError('give the TASK, e.g. turnout run "make the tests pass", or --resume RUN_ID|last')
    if not run_id:
        check_has_tests(repo, args.test_command)
    policy = load_policy(repo, args.policy)  # a bad policy file is reported before the model loads
    # With only in-process targets every request goes to the model: it loads now, so a missing
    # or broken one is reported before the run starts. A policy with other targets may send it
    # nothing: it loads on the first request routed to it.
    lazy = any(target.runtime != "llama_cpp" for target in policy.targets.values())
    if not lazy:
        say(f"turnout: loading {args.model} ...")
    try:
        with RunView(live=color_wanted(sys.stderr, args.no_color)) as view:
            model = compose.open_local_model(
                args.model, threads=args.threads, n_gpu_layers=args.n_gpu_layers, progress=view.line, lazy=lazy,
                prefix_cache=compose.prefix_cache_dir(repo),
            )
            report = _run(args, task, repo, model, run_id, view)
    except RunInterrupted as stopped:
        show(stopped.report, args)
        return 130
    show(report, args)
    return 0 if report.exit_status in DONE else 1


def show(report: RunReport, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(report.model_dump(), indent=2))
    else:
        print_report(render(report), color=color_wanted(sys.stdout, args.no_color))


def _run(
    args: argparse.Namespace, task: str, repo: Path, model: ChatModel, run_id: str | None, view: RunView
) -> RunReport:
    return run_task(
        task,
        repo,
        model,
        config=AgentConfig(max_steps=args.max_steps, samples=max(args.samples, 0),
                           reflections=max(args.reflections, 0), drafter=args.drafter),
        run_id=run_id,
        resume=run_id is not None,
        test_command=args.test_command,
        approval_mode=args.approval_mode,
        asker=view.pausing(terminal_asker) if sys.stdin.isatty() else None,
        progress=view.line,
        status=view.status,
        policy_file=args.policy,
        allow_unsandboxed=args.allow_unsandboxed,
    )

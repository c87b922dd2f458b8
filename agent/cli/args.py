"""Argument types and parser shapes the commands share."""

from __future__ import annotations

import argparse
from typing import Any

# The in-process runtime's drafters a user picks from (turnout's own decode loop each).
DRAFTERS = ("suffix", "draft-model", "none")
DRAFTER_HELP = (
    "the in-process model's speculative drafter for greedy replies: suffix (default; copies from "
    "the prompt and the session, fastest where a reply repeats what it read), draft-model (the "
    "0.5B drafts), none (plain decoding); ignored by other targets"
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def command_group(
    sub: argparse._SubParsersAction, name: str, metavar: str, **options: Any
) -> argparse._SubParsersAction:
    """A command made of actions (`turnout models list`, `turnout bench agent`): its parser,
    made with `options`, and the subparsers its actions are added to. Given no action, the
    command prints its help and exits 2."""
    parser = sub.add_parser(name, **options)
    parser.set_defaults(handler=lambda _args: _show_help(parser))
    return parser.add_subparsers(dest=f"{name}_command", metavar=metavar)


def _show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

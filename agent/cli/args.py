"""Argument types the commands share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def show_help(parser: argparse.ArgumentParser) -> int:
    """What a command with actions does when none is given: its help, and exit code 2."""
    parser.print_help()
    return 2

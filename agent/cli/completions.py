"""`turnout completions SHELL`: a completion script for bash, zsh or tcsh, from the parser itself
(shtab), so every command, flag and choice completes as `--help` lists it."""

from __future__ import annotations

import argparse

import shtab

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(sub: argparse._SubParsersAction) -> None:
    completions = sub.add_parser(
        "completions", help="print a shell completion script (bash, zsh, tcsh)",
        description="Print the completion script for SHELL. Install it once, e.g. for bash: "
        "turnout completions bash > ~/.local/share/bash-completion/completions/turnout; "
        "for zsh: turnout completions zsh > ~/.zfunc/_turnout (with ~/.zfunc on fpath).",
    )
    completions.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    completions.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    # `parser` is the whole command line's parser, this command included (set by main.py).
    print(shtab.complete(args.parser, shell=args.shell))
    return 0

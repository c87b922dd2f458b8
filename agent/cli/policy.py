"""`turnout policy check`: validate the routing policy and print what it allows."""

from __future__ import annotations

import argparse
from pathlib import Path

from turnout.agent.cli.args import show_help
from turnout.router.explain import policy_json, render_policy
from turnout.router.policy import load_policy


def add_parser(sub: argparse._SubParsersAction) -> None:
    pol = sub.add_parser("policy", help="check the routing policy (turnout.toml or [tool.turnout])",
                         description="The policy says which targets exist and which data may go "
                         "to them. With no policy file every request stays on this machine.")
    pol.set_defaults(handler=lambda _args: show_help(pol))
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION")
    pcheck = psub.add_parser("check", help="validate the policy and print what it says")
    pcheck.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    pcheck.add_argument("--policy", type=Path, default=None, metavar="FILE",
                        help="policy file (default: REPO/turnout.toml, else [tool.turnout])")
    pcheck.add_argument("--json", action="store_true", help="print JSON")
    pcheck.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    policy = load_policy(args.repo, args.policy)  # a PolicyError names the key: exit 2
    print(policy_json(policy) if args.json else render_policy(policy))
    return 0

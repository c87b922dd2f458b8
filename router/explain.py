"""`turnout explain` and `turnout policy check`: the router's decisions and the policy, for people.

`explain` builds a request from a prompt, files or a recorded request and runs the router's own
decision path on it (`PolicyRouter.explain`), calling no model. A file given with `--file`
enters the request the way the agent would read it, as a `read_file` call and its result, so
path labels and taint apply exactly as they would in a run: the name is resolved by the same
function (`paths.repo_path`: `..`, symlinks, `REV:path`) and the content matched against the
labelled files' fingerprints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError
from turnout.router.policy import Policy
from turnout.router.router import PolicyRouter, RouteDecision
from turnout.runtimes.base import ChatRequest, Message, ToolCall
from turnout.runtimes.errors import UsageError


def build_request(
    repo: Path, prompt: str | None = None, files: list[Path] | None = None, recorded: Path | None = None
) -> ChatRequest:
    if recorded is not None:
        try:
            return ChatRequest.model_validate_json(recorded.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--request {recorded}: cannot be read ({exc.strerror})") from None
        except ValidationError as exc:
            raise UsageError(
                f"--request {recorded}: not a recorded chat request (JSON with a `messages` list): "
                f"{exc.errors()[0]['msg']}"
            ) from None
    if not prompt and not files:
        raise UsageError("give a PROMPT, --file PATH or --request FILE.json to explain")
    messages = [Message(role="user", content=prompt or "Read the file(s) and summarise them.")]
    for i, path in enumerate(files or []):
        try:
            content = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(f"--file {path}: cannot be read ({exc.strerror})") from None
        shown = _relative(path, repo)
        call = ToolCall(id=f"explain-{i}", name="read_file", arguments={"path": shown})
        messages.append(Message(role="assistant", tool_calls=[call]))
        messages.append(Message(role="tool", name="read_file", tool_call_id=call.id, content=content))
    return ChatRequest(messages=messages)


def explain(policy: Policy, repo: Path, request: ChatRequest) -> RouteDecision:
    """The decision, with every target considered as configured (nothing is built or called)."""
    return PolicyRouter(policy, {}, repo=repo).explain(request)


def render_decision(decision: RouteDecision) -> str:
    head = (
        f"refused (rule {decision.rule})" if decision.refused
        else f"destination: {decision.target} (rule {decision.rule})"
    )
    lines = [
        head,
        f"  {decision.reason}",
        (
            f"  work class: {decision.work_class}   about {decision.estimated_tokens} tokens   "
            f"request {decision.request_hash} ({decision.request_bytes} bytes)"
        ),
        f"  labels: {_counts(decision.labels)}   kinds: {_counts(decision.kinds)}",
    ]
    if decision.targets:
        lines.append(f"  allowed, in order: {', '.join(decision.targets)}")
    lines.append("  reasons:")
    lines += [f"    - {r}" for r in decision.reasons]
    lines.append(f"  policy: {decision.policy or 'default (no policy file: local only)'}")
    return "\n".join(lines)


def render_policy(policy: Policy) -> str:
    lines = [f"policy: {policy.source or 'default (no turnout.toml or [tool.turnout]): local only'}"]
    lines.append("targets:")
    for name, t in policy.targets.items():
        extra = f" {t.model}" if t.model else ""
        url = f" at {t.base_url}" if t.base_url else ""
        lines.append(f"  {name}: {t.runtime}{extra}{url} ({t.location}: {t.location_rule}; "
                     f"context {t.context_window})")
    lines.append("labels:")
    for name, rule in policy.labels.items():
        audience = [*rule.allow_locations, *(f"target {x}" for x in rule.allow_targets)]
        found_by = [*(f"path {p}" for p in rule.paths), *(f"pattern {p}" for p in rule.patterns)]
        how = f"; found by {', '.join(found_by)}" if found_by else ""
        lines.append(f"  {name}: may go to {', '.join(audience) or 'nowhere'}{how}")
    w = policy.work
    lines.append(f"work: repetitive {w.repetitive}, hard {w.hard}, escalation {w.escalation}")
    lines.append(f"redaction: {'on' if policy.redaction.enabled else 'off'}")
    b = policy.budgets
    cost = f"${b.max_cost_usd_per_run}" if b.max_cost_usd_per_run else "no limit"
    lines.append(f"budgets: tokens {b.max_tokens_per_run or 'no limit'}, cost {cost}")
    lines.append(f"audit: {policy.audit.path if policy.audit.enabled else 'off'}")
    return "\n".join(lines)


def policy_json(policy: Policy) -> str:
    return json.dumps({"source": policy.source, "valid": True, "policy": policy.model_dump()}, indent=2)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"


def _relative(path: Path, repo: Path) -> str:
    """The name a model would give `path` (a path on the command line, relative to the current
    directory): relative to the repository root, symlinks not followed, so the router resolves
    it by the same rules as a name in a run (`paths.repo_path`)."""
    named = os.path.relpath(path.absolute(), repo.absolute())
    return path.absolute().as_posix() if named.startswith("..") else Path(named).as_posix()

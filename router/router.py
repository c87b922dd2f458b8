"""The policy router: every model request is scanned, classified and sent only where it may go.

`PolicyRouter` is itself a `ChatModel`: the agent calls one object and learns which target
answered only from `ChatResponse.route`. For each request it

1. scans it locally (`scan.Scanner`: secrets, personal data, the policy's patterns) and adds the
   run's taint (`taint.RunTaint`: labels picked up from labelled paths, and from the labelled
   files' content wherever it appears, `fingerprints.ContentIndex`, for the rest of the run);
2. classifies the work (`classify`: repetitive, hard, escalation) and estimates its size;
3. decides (`decide`): the targets every label present allows, that can hold the request,
   ordered by the work class's preferences, or a refusal (`PolicyRefusal`) when there are none;
4. sends it to the first of them, and on a `RuntimeFailure` (the runtime's own bounded retries
   spent, circuit open, budget) to the next, never outside that list. A cloud-bound request may
   have its secrets replaced by placeholders (`[redaction] enabled`), which are put back in the
   reply's tool-call arguments; the outgoing request is scanned again and held back if a secret
   remains;
5. logs a `route` event (target, rule, reason; hashes and sizes, never payloads) and writes one
   audit record (`audit.AuditLog`).

`explain` runs steps 1 to 3 and calls nothing. With no policy file the default policy yields
what the first router did: every request to the one local target, rule `default-local-only`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field
from turnout.router.audit import AuditAttempt, AuditLog, AuditRecord
from turnout.router.classify import WorkAssessment, classify
from turnout.router.fingerprints import ContentIndex
from turnout.router.policy import SECRET, LabelRule, Policy, TargetConfig
from turnout.router.scan import Finding, PathLabeler, Scanner
from turnout.router.taint import RunTaint, TaintMark
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse, Message, ToolCall
from turnout.runtimes.errors import PolicyRefusal, RuntimeFailure

DEFAULT_RULE = "default-local-only"
PLACEHOLDER_PREFIX = "[REDACTED:"


class TargetVerdict(BaseModel):
    """Whether one target may receive the request, and why."""

    target: str
    location: str
    allowed: bool
    redact: bool = False  # allowed only with the secrets replaced by placeholders
    blocked_by: list[str] = Field(default_factory=list)  # labels that may not go to it
    reasons: list[str] = Field(default_factory=list)


class RouteDecision(BaseModel):
    """Where a request may go: the allowed targets in order, or a refusal, with every reason."""

    target: str  # the first choice; "" when refused
    targets: list[str]  # every allowed target, in the order they are tried
    refused: bool
    rule: str  # what decided: default-local-only, label:NAME, work:CLASS, refuse:label:NAME, ...
    reason: str  # one sentence for people
    reasons: list[str]  # every finding, taint mark and target verdict, in words
    work_class: str
    labels: dict[str, int]  # label -> how many findings or marks carry it (never values)
    kinds: dict[str, int]  # e.g. aws_access_key -> 1, email -> 2, path:customers -> 1
    verdicts: list[TargetVerdict]
    request_hash: str  # BLAKE2b-64 of the request's JSON: correlates records, reveals nothing
    request_bytes: int  # size of the request as JSON
    estimated_tokens: int
    policy: str  # the policy file, or "" for the default policy


class _Assessment:
    """What `decide` learnt about one request, kept for sending it (redaction needs values)."""

    def __init__(self, findings: list[Finding], marks: list[TaintMark], work: WorkAssessment) -> None:
        self.findings = findings
        self.marks = marks
        self.work = work


class PolicyRouter:
    """A `ChatModel` that routes each request by the policy; see the module docstring."""

    def __init__(
        self,
        policy: Policy,
        models: Mapping[str, ChatModel],
        *,
        repo: Path | None = None,
        run_id: str = "",
        logger: Any | None = None,
        audit: AuditLog | None = None,
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.name = "router(" + ",".join(models) + ")"
        self._models = dict(models)
        self._unavailable = dict(unavailable or {})
        self._run_id = run_id
        self._log = logger if logger is not None else structlog.get_logger("turnout.router")
        self._audit = audit
        self._scanner = Scanner(policy)
        labeler = PathLabeler(policy, repo)
        # Fingerprints of the labelled files as they are now, so their content is recognised
        # whatever route it takes into a request (see fingerprints.py).
        self.content = ContentIndex(labeler, repo)
        stats = self.content.build()
        if stats.labelled_files:
            self._log.info(
                "fingerprints", labelled_files=stats.labelled_files, unlabelled_files=stats.unlabelled_files,
                fingerprints=stats.fingerprints, seconds=stats.seconds, skipped=len(stats.skipped),
            )
        self._taint = RunTaint(labeler, self.content)
        self._placeholders: dict[str, str] = {}  # secret value -> its placeholder, stable per run

    @property
    def audit(self) -> AuditLog | None:
        """Where this router's decisions are recorded (None: the policy keeps no audit)."""
        return self._audit

    @property
    def taint(self) -> list[TaintMark]:
        """The marks this router's conversation has picked up so far."""
        return self._taint.marks

    def carry_taint_from(self, other: PolicyRouter) -> None:
        """Start from `other`'s marks: the same conversation, sent through a new router."""
        self._taint.adopt(other.taint)

    def adopt_taint(self, marks: list[TaintMark]) -> None:
        """Start from marks kept with a conversation (a chat restarted from its history)."""
        self._taint.adopt(marks)

    # --- deciding -----------------------------------------------------------------------------

    def explain(self, request: ChatRequest) -> RouteDecision:
        """The decision for `request`, by the same code path as `chat`, without calling a model."""
        decision, _ = self._decide(request)
        return decision

    def _decide(self, request: ChatRequest) -> tuple[RouteDecision, _Assessment]:
        findings = self._scan(request)
        marks = self._taint.observe(request)
        work = classify(request)
        assessment = _Assessment(findings, marks, work)

        labels: Counter[str] = Counter(f.label for f in findings)
        labels.update(m.label for m in marks)
        kinds: Counter[str] = Counter(f.kind for f in findings)
        kinds.update(f"path:{m.label}" for m in marks)
        reasons = [f"work class {work.work_class}: {work.reason}"]
        if findings:
            found = ", ".join(f"{k} x{n}" for k, n in sorted(Counter(f.kind for f in findings).items()))
            reasons.append(f"scanner found {found}")
        reasons += [f"taint {m.describe()}" for m in marks]

        redactable = self._redactable_labels(findings, marks)
        verdicts = [
            self._verdict(name, target, labels, redactable, work.estimated_tokens)
            for name, target in self.policy.targets.items()
        ]
        for v in verdicts:
            reasons.append(f"target {v.target} ({v.location}): {'allowed' if v.allowed else 'blocked'}"
                           f" - {'; '.join(v.reasons)}")
        allowed = self._ordered([v for v in verdicts if v.allowed], work.work_class)
        rule, reason = self._rule(labels, verdicts, allowed, work, self._describe_labels(findings, marks))
        # BLAKE2b over pydantic's JSON bytes: a 128 KB request costs a fraction of a millisecond,
        # about half of SHA-256 here, and 64 bits are plenty to correlate records.
        payload = request.__pydantic_serializer__.to_json(request)
        decision = RouteDecision(
            target=allowed[0] if allowed else "",
            targets=allowed,
            refused=not allowed,
            rule=rule,
            reason=reason,
            reasons=reasons,
            work_class=work.work_class,
            labels=dict(labels),
            kinds=dict(kinds),
            verdicts=verdicts,
            request_hash=hashlib.blake2b(payload, digest_size=8).hexdigest(),
            request_bytes=len(payload),
            estimated_tokens=work.estimated_tokens,
            policy=self.policy.source,
        )
        return decision, assessment

    def _scan(self, request: ChatRequest) -> list[Finding]:
        findings: list[Finding] = []
        for message in request.messages:
            findings.extend(self._scanner.scan(message.content))
            for call in message.tool_calls:
                for text in _strings(call.arguments):
                    findings.extend(self._scanner.scan(text))
                for key in _keys(call.arguments):  # a model can put a value in a key too
                    findings.extend(self._scanner.scan(key))
        # A server writes its tools' descriptions and schemas, and they are sent with every
        # request: a key pasted into one goes out as surely as one in a message.
        for tool in request.tools:
            findings.extend(self._scanner.scan(tool.description))
            findings.extend(self._scanner.scan(json.dumps(tool.input_schema)))
        return findings

    def _redactable_labels(self, findings: list[Finding], marks: list[TaintMark]) -> set[str]:
        """Labels whose every occurrence can be replaced by a placeholder (redaction on)."""
        if not self.policy.redaction.enabled:
            return set()
        secrets = [f for f in findings if f.label == SECRET]
        if secrets and all(f.redactable for f in secrets) and not any(m.label == SECRET for m in marks):
            return {SECRET}
        return set()

    def _verdict(
        self, name: str, target: TargetConfig, labels: Counter[str], redactable: set[str], tokens: int
    ) -> TargetVerdict:
        verdict = TargetVerdict(target=name, location=target.location, allowed=True)
        for label in sorted(labels):
            rule = self.policy.labels[label]
            if target.location in rule.allow_locations or name in rule.allow_targets:
                verdict.reasons.append(f"{label} may go to it")
            elif label in redactable:
                verdict.redact = True
                verdict.reasons.append(f"{label} values are replaced by placeholders before sending")
            else:
                verdict.allowed = False
                verdict.blocked_by.append(label)
                verdict.reasons.append(f"{label} may go only to {_audience(rule)}")
        if tokens > target.context_window:
            verdict.allowed = False
            verdict.reasons.append(
                f"the request needs about {tokens} tokens, its context window is {target.context_window}"
            )
        if name in self._unavailable:
            verdict.allowed = False
            verdict.reasons.append(f"unavailable: {self._unavailable[name]}")
        if not verdict.reasons:
            verdict.reasons.append("nothing in the request restricts it")
        return verdict

    def _ordered(self, allowed: list[TargetVerdict], work_class: str) -> list[str]:
        preferences: list[str] = getattr(self.policy.work, work_class)
        declared = list(self.policy.targets)

        def rank(v: TargetVerdict) -> tuple[int, int]:
            for i, entry in enumerate(preferences):
                if entry in (v.target, v.location):
                    return (i, declared.index(v.target))
            return (len(preferences), declared.index(v.target))

        return [v.target for v in sorted(allowed, key=rank)]

    def _rule(
        self,
        labels: Counter[str],
        verdicts: list[TargetVerdict],
        allowed: list[str],
        work: WorkAssessment,
        carried: str,
    ) -> tuple[str, str]:
        blocking = sorted({label for v in verdicts for label in v.blocked_by})
        limits = "; ".join(f"{b} may go only to {_audience(self.policy.labels[b])}" for b in blocking)
        where = self.policy.source or "turnout.toml"
        targets = _targets_text(verdicts)
        if not allowed and blocking:
            fixes = " or ".join(f"labels.{b}.allow_targets" for b in blocking)
            message = (
                f"refused before sending anything: the request carries {carried}; {limits}; no target "
                f"of the policy qualifies ({targets}). To allow it, declare a target at an allowed "
                f"location in {where}, or name a target in {fixes}."
            )
            return "refuse:" + ",".join(f"label:{b}" for b in blocking), message
        if not allowed and any(v.target not in self._unavailable for v in verdicts):
            message = (
                f"refused before sending anything: the request needs about {work.estimated_tokens} "
                f"tokens and no available target's context_window is that large ({targets}); "
                f"shorten the request or declare a target with a larger context_window in {where}."
            )
            return "refuse:context-window", message
        if not allowed:
            unavailable = "; ".join(f"{n}: {why}" for n, why in self._unavailable.items())
            message = (
                f"refused: no target of the policy is available ({unavailable}); make one available "
                f"or declare a local target in {where}."
            )
            return "refuse:unavailable", message
        if self.policy.is_default:
            return DEFAULT_RULE, "no policy file: the default policy keeps every request on this machine"
        if blocking:
            message = f"the request carries {carried}; {limits}; {work.work_class} work goes to {allowed[0]}"
            return ",".join(f"label:{b}" for b in blocking), message
        found = f"the request carries {carried}, which every target may receive" if labels else (
            "nothing sensitive found"
        )
        return f"work:{work.work_class}", f"{found}; {work.work_class} work ({work.reason}) prefers {allowed[0]}"

    @staticmethod
    def _describe_labels(findings: list[Finding], marks: list[TaintMark]) -> str:
        """`secret (2: aws_access_key, jwt), customers (from data/customers/a.csv)`: no values."""
        kinds: dict[str, Counter[str]] = {}
        for f in findings:
            kinds.setdefault(f.label, Counter())[f.kind] += 1
        paths: dict[str, set[str]] = {}
        for m in marks:
            paths.setdefault(m.label, set()).add(m.path)
        parts = []
        for label in sorted(set(kinds) | set(paths)):
            bits = []
            if label in kinds:
                bits.append(f"{sum(kinds[label].values())}: {', '.join(sorted(kinds[label]))}")
            if label in paths:
                bits.append("from " + ", ".join(sorted(paths[label])[:3]))
            parts.append(f"{label} ({'; '.join(bits)})")
        return ", ".join(parts)

    # --- sending ------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ChatResponse:
        try:
            decision, assessment = self._decide(request)
        except Exception as exc:  # whatever broke, fail closed: nothing is sent
            self._log.info("route", target="none", rule="refuse:scan-error", reason=type(exc).__name__)
            raise PolicyRefusal(
                f"the request was not sent: deciding where it may go failed ({type(exc).__name__}); "
                "this is a bug in turnout's router, please report it with the run's events.jsonl"
            ) from exc
        self._log.info(
            "route",
            target=decision.target or "none",
            rule=decision.rule,
            reason=decision.reason,
            work_class=decision.work_class,
            allowed=decision.targets,
            labels=decision.labels,
            request_hash=decision.request_hash,
            request_bytes=decision.request_bytes,
            messages=len(request.messages),
        )
        record = AuditRecord(
            run_id=self._run_id,
            request_hash=decision.request_hash,
            request_bytes=decision.request_bytes,
            messages=len(request.messages),
            estimated_tokens=decision.estimated_tokens,
            work_class=decision.work_class,
            labels=decision.labels,
            kinds=decision.kinds,
            rule=decision.rule,
            allowed=decision.targets,
            outcome="refused",
            policy=self.policy.source,
        )
        if decision.refused:
            self._write_audit(record)
            raise PolicyRefusal(decision.reason)

        verdicts = {v.target: v for v in decision.verdicts}
        failures: list[str] = []
        for name in decision.targets:
            verdict = verdicts[name]
            if not verdict.allowed:  # checked again on every fallback, whatever changed the list
                raise PolicyRefusal(f"{name} is not allowed for this request: {'; '.join(verdict.reasons)}")
            model = self._models.get(name)
            if model is None:
                why = self._unavailable.get(name, "no runtime was built for it")
                record.attempts.append(AuditAttempt(target=name, outcome="unavailable"))
                failures.append(f"{name}: unavailable ({why})")
                continue
            outgoing, restore = request, {}
            if verdict.redact:
                outgoing, restore = self._redacted(request, assessment.findings)
                if any(f.label == SECRET for f in self._scan(outgoing)):
                    record.attempts.append(AuditAttempt(target=name, outcome="held_back"))
                    failures.append(f"{name}: held back, a secret survived redaction")
                    continue
                record.redacted = len(restore)
            started = time.perf_counter()
            try:
                response = model.chat(outgoing)
            except RuntimeFailure as exc:
                seconds = round(time.perf_counter() - started, 3)
                record.attempts.append(
                    AuditAttempt(
                        target=name, outcome="failed", upstream_attempts=exc.attempts,
                        error=type(exc).__name__, seconds=seconds,
                    )
                )
                failures.append(f"{name}: {exc}")
                self._log.info("route_fallback", target=name, error=type(exc).__name__,
                               upstream_attempts=exc.attempts)
                continue
            if restore:
                response.tool_calls = [_restore_call(c, restore) for c in response.tool_calls]
            response.route = name
            record.attempts.append(
                AuditAttempt(
                    target=name, outcome="ok", upstream_attempts=response.attempts,
                    seconds=round(time.perf_counter() - started, 3),
                )
            )
            record.destination = name
            record.outcome = "ok"
            self._write_audit(record)
            return response
        record.outcome = "failed"
        self._write_audit(record)
        raise RuntimeFailure(
            "every target the policy allows for this request failed, and no other may be tried: "
            + "; ".join(failures)
        )

    def _write_audit(self, record: AuditRecord) -> None:
        if self._audit is not None:
            self._audit.write(record)

    def _redacted(self, request: ChatRequest, findings: list[Finding]) -> tuple[ChatRequest, dict[str, str]]:
        """The request with each secret value replaced by a placeholder, and placeholder -> value."""
        secrets = {f.value: f.kind for f in findings if f.label == SECRET and f.redactable}
        for value, kind in secrets.items():
            if value not in self._placeholders:
                self._placeholders[value] = f"{PLACEHOLDER_PREFIX}{kind}#{len(self._placeholders) + 1}]"
        pairs = sorted(((v, self._placeholders[v]) for v in secrets), key=lambda p: -len(p[0]))

        def hide(text: str) -> str:
            for value, placeholder in pairs:
                text = text.replace(value, placeholder)
            return text

        messages = [
            Message(
                role=m.role,
                content=hide(m.content),
                tool_calls=[ToolCall(id=c.id, name=c.name, arguments=_map_strings(c.arguments, hide))
                            for c in m.tool_calls],
                tool_call_id=m.tool_call_id,
                name=m.name,
            )
            for m in request.messages
        ]
        tools = [t.model_copy(update={"description": hide(t.description),
                                      "input_schema": _map_strings(t.input_schema, hide)})
                 for t in request.tools]
        return request.model_copy(update={"messages": messages, "tools": tools}), {p: v for v, p in pairs}


def _restore_call(call: ToolCall, restore: dict[str, str]) -> ToolCall:
    def put_back(text: str) -> str:
        if PLACEHOLDER_PREFIX not in text:
            return text
        for placeholder, value in restore.items():
            text = text.replace(placeholder, value)
        return text

    return call.model_copy(update={"arguments": _map_strings(call.arguments, put_back)})


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def _strings(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_strings(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_strings(v))
    return out


def _keys(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            out.extend(_keys(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_keys(v))
    return out


def _audience(rule: LabelRule) -> str:
    places = [f"{loc} targets" for loc in rule.allow_locations]
    places += [f"target {t}" for t in rule.allow_targets]
    return " or ".join(places) if places else "no target"


def _targets_text(verdicts: list[TargetVerdict]) -> str:
    return "; ".join(f"{v.target} ({v.location}): {', '.join(v.reasons)}" for v in verdicts)

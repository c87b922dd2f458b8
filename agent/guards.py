"""Loop detection for the agent loop: notice when a run goes round in circles, and respond.

Provides `LoopConfig` (the thresholds), `LoopDetector` (fed what each step did, it says what to
do: continue, nudge, escalate or stop) and `LoopEvidence` (what was seen, for the run report).

Signals:

- `repeated_call`: the same tool call with the same result, several times in a row;
- `call_cycle`: a cycle of 2 to 5 calls repeating with the same results (A-B-A-B, A-B-C-A-B-C);
- `same_failure`: the same failing-test signature coming back after edits that did not change it;
- `edit_reverted`: an edit that puts a file back to a content it had before (undoing an edit);
- `degenerate_repetition`: a reply that became one unit repeated over and over and was ended
  early by the runtime (see `turnout.runtimes.local.repetition`);
- `invalid_calls`: reply after reply with no valid tool call, past the bounded re-asks.

Responses, in order, one rung per step that shows a loop: a nudge in the conversation, then
escalation (a flag on the next request that the router can act on, when the config allows it),
then a clean stop with exit status `loop_detected`. A step that makes progress (a failing-test
signature not seen before, or fewer failures) starts the ladder again.

Defaults and their anchors. Gemini CLI stops at 5 identical tool calls in a row; OpenHands at 4
identical action/observation pairs, 3 identical errors, or A-B-A-B over 6 steps. Calls here are
compared with their results (an action/observation pair, as OpenHands does), so a repeat is
never a call that happened to return something new. The first response is only a nudge, so it
comes early: 3 identical pairs (nudge), 4 (escalate), 5 (stop: Gemini's count). A cycle of k
calls is flagged once min(k, 4) steps have repeated the step k before them: A-B-A-B at step 4,
escalated at 6 (OpenHands' pattern), stopped at 8; a 5-cycle 4 steps into its second round,
within 3 steps of the round's start. The same failure 3 times in a row (OpenHands' 3 identical
errors) is 2 edits that changed nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field

Signal = Literal[
    "repeated_call",
    "call_cycle",
    "same_failure",
    "edit_reverted",
    "degenerate_repetition",
    "invalid_calls",
]
Action = Literal["continue", "nudge", "escalate", "stop"]


class LoopConfig(BaseModel):
    """Thresholds of the loop detector. Each counts steps of the agent (tool calls, test runs)."""

    enabled: bool = Field(default=True, description="watch for loops at all")
    identical_calls: int = Field(
        default=3, ge=2, description="the same call with the same result this many times in a row"
    )
    max_cycle: int = Field(default=5, ge=2, description="longest cycle of calls looked for")
    cycle_evidence: int = Field(
        default=4, ge=2,
        description="steps that must repeat the step one cycle before (or a whole cycle, if shorter)",
    )
    same_failure: int = Field(
        default=3, ge=2, description="the same failing-test signature this many times in a row"
    )
    reverts: int = Field(default=1, ge=1, description="edits that restore an earlier file content")
    max_reasks: int = Field(
        default=2, ge=0, description="replies with only invalid calls re-asked before it is a loop"
    )
    allow_escalation: bool = Field(
        default=True, description="ask the router for a stronger target before stopping"
    )


class LoopEvidence(BaseModel):
    """One detection, as it goes into the run report."""

    signal: Signal
    step: int  # the agent step (model reply number) at which it was seen
    action: Action  # what the detector answered
    detail: str  # what repeated, in words
    repeats: int = 0  # how many times (calls, failures, reverts, tokens saved)


class LoopVerdict(BaseModel):
    action: Action = "continue"
    message: str = ""  # the nudge to put in front of the model, when there is one
    evidence: list[LoopEvidence] = Field(default_factory=list)


class LoopState(BaseModel):
    """Everything the detector remembers, small and serialisable into the run's checkpoint."""

    steps: list[str] = Field(default_factory=list)  # one key per call: call + result
    labels: list[str] = Field(default_factory=list)  # the call, readable, per step
    failure: str = ""  # the last failing-test signature
    failure_run: int = 0  # how many times in a row it was seen
    seen_failures: list[str] = Field(default_factory=list)
    fewest_failures: int = -1
    file_history: dict[str, list[str]] = Field(default_factory=dict)  # path -> content hashes
    reverts: int = 0
    edited_since_tests: bool = False  # an edit changed a file since the last test run
    invalid_run: int = 0
    fired: dict[str, int] = Field(default_factory=dict)  # signal key -> evidence when it fired
    strikes: int = 0
    evidence: list[LoopEvidence] = Field(default_factory=list)
    pending: list[LoopEvidence] = Field(default_factory=list)


_TIMING = re.compile(r"\b\d+(?:\.\d+)?\s*(?:s|ms|sec|seconds)\b")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_FAILURE_LINE = re.compile(r"^(?:FAILED|ERROR)\s+\S+|^E\s+.+", re.MULTILINE)
_FAILED_COUNT = re.compile(r"(\d+) (?:failed|error)")


def normalized(text: str) -> str:
    """Output with what changes between identical runs (timings, addresses) masked."""
    return _ADDRESS.sub("0x?", _TIMING.sub("?s", text)).strip()


def failure_signature(output: str) -> str:
    """What identifies a test failure: pytest's FAILED/ERROR lines and its `E` lines, or the
    output's last lines for other runners, with timings masked."""
    lines = sorted({normalized(m.group(0)) for m in _FAILURE_LINE.finditer(output)})
    if not lines:
        lines = [normalized(line) for line in output.strip().splitlines()[-15:]]
    return "\n".join(lines)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _call_label(name: str, arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, sort_keys=True, default=str)
    return f"{name}({text[:80] + '…' if len(text) > 80 else text})"


class LoopDetector:
    """Fed what each step did; `verdict()` at the end of the step says what to do about loops."""

    def __init__(self, config: LoopConfig | None = None, state: dict[str, Any] | None = None):
        self.config = config or LoopConfig()
        self.state = LoopState.model_validate(state) if state else LoopState()

    def dump(self) -> dict[str, Any]:
        return self.state.model_dump()

    @property
    def evidence(self) -> list[LoopEvidence]:
        return list(self.state.evidence)

    # -- observations ---------------------------------------------------------------------

    def record_call(self, step: int, name: str, arguments: dict[str, Any], result: str, is_error: bool) -> None:
        """One tool call and what it returned."""
        s = self.state
        call = json.dumps([name, arguments], sort_keys=True, default=str)
        observation = ("error:" if is_error else "ok:") + normalized(result)
        s.steps.append(_digest(call + "\0" + observation))
        s.labels.append(_call_label(name, arguments))
        self._check_repeats(step)

    def record_tests(self, step: int, output: str, passed: bool) -> None:
        """A test run, by the model or by the loop after an edit."""
        s = self.state
        if passed:
            s.failure, s.failure_run, s.edited_since_tests = "", 0, False
            self._progress()
            return
        signature = failure_signature(output)
        edited, s.edited_since_tests = s.edited_since_tests, False
        counts = [int(n) for n in _FAILED_COUNT.findall(output)]
        failed = sum(counts) if counts else -1
        new = signature not in s.seen_failures
        fewer = failed >= 0 and 0 <= s.fewest_failures and failed < s.fewest_failures
        if failed >= 0 and (s.fewest_failures < 0 or failed < s.fewest_failures):
            s.fewest_failures = failed
        if new:
            s.seen_failures.append(signature)
        if signature == s.failure:
            # Tests re-run with no edit in between are a repeated call, not a failed fix.
            s.failure_run += 1 if edited else 0
        else:
            s.failure, s.failure_run = signature, 1
            s.fired.pop("same_failure", None)
        if fewer or (new and len(s.seen_failures) > 1):
            self._progress()  # a failure never seen before, or fewer failures: the run moves
        if s.failure_run >= self.config.same_failure and self._fires("same_failure", s.failure_run, 1):
            first = signature.splitlines()[0] if signature else "(no output)"
            self._flag(
                "same_failure", step,
                f"the tests failed the same way {s.failure_run} times in a row: {first[:160]}",
                s.failure_run,
            )

    def record_edit(self, step: int, path: str, before: str | None, after: str | None) -> None:
        """An edit that applied: the file's content before and after it."""
        s = self.state
        if before == after:
            return
        s.edited_since_tests = True
        history = s.file_history.setdefault(path, [_digest(before or "")])
        target = _digest(after or "")
        if target in history[:-1]:
            s.reverts += 1
            if s.reverts >= self.config.reverts:
                back = len(history) - history.index(target) - 1
                self._flag(
                    "edit_reverted", step,
                    f"the edit of {path} put it back as it was {back} edit(s) earlier",
                    s.reverts,
                )
        history.append(target)

    def record_reply(self, step: int, *, valid_calls: int, problems: int, repetition_aborted: bool,
                     tokens_saved: int = 0) -> None:
        """One model reply: how many valid calls and problems it had, and whether the runtime
        ended it for degenerate repetition."""
        s = self.state
        if repetition_aborted:
            self._flag(
                "degenerate_repetition", step,
                f"the reply repeated itself and was ended early ({tokens_saved} tokens saved)",
                tokens_saved,
            )
        if problems and not valid_calls:
            s.invalid_run += 1
            if s.invalid_run > self.config.max_reasks:
                self._flag(
                    "invalid_calls", step,
                    f"{s.invalid_run} replies in a row without a valid tool call",
                    s.invalid_run,
                )
        elif valid_calls:
            s.invalid_run = 0

    # -- the response ---------------------------------------------------------------------

    def verdict(self) -> LoopVerdict:
        """What to do about what this step showed; call once at the end of each step."""
        s = self.state
        if not s.pending or not self.config.enabled:
            s.pending = []
            return LoopVerdict()
        s.strikes += 1
        ladder: list[Action] = ["nudge", "escalate", "stop"] if self.config.allow_escalation else [
            "nudge", "stop"
        ]
        action = ladder[min(s.strikes, len(ladder)) - 1]
        found = [e.model_copy(update={"action": action}) for e in s.pending]
        s.pending = []
        s.evidence.extend(found)
        return LoopVerdict(action=action, message=_nudge(found, action), evidence=found)

    # -- internals ------------------------------------------------------------------------

    def _check_repeats(self, step: int) -> None:
        s = self.state
        keys = s.steps
        for period in range(1, self.config.max_cycle + 1):
            run = 0
            index = len(keys) - 1
            while index - period >= 0 and keys[index] == keys[index - period]:
                run += 1
                index -= 1
            name = "repeated_call" if period == 1 else "call_cycle"
            key = f"{name}:{period}"
            if run == 0:
                s.fired.pop(key, None)
                continue
            if period > 1 and len(set(keys[-period:])) == 1:
                continue  # one call repeated is period 1, not a cycle
            needed = self.config.identical_calls - 1 if period == 1 else min(period, self.config.cycle_evidence)
            if run >= needed and self._fires(key, run, period):
                if period == 1:
                    detail = f"{s.labels[-1]} returned the same result {run + 1} times in a row"
                    self._flag("repeated_call", step, detail, run + 1)
                else:
                    cycle = " -> ".join(s.labels[-period:])
                    detail = f"a cycle of {period} calls repeating with the same results: {cycle}"
                    self._flag("call_cycle", step, detail, run + period)
                return  # the shortest period explains it

    def _fires(self, key: str, amount: int, every: int) -> bool:
        """Whether a signal fires now: the first time its threshold is met, then once more per
        `every` further steps of the same evidence."""
        last = self.state.fired.get(key)
        if last is not None and amount < last + every:
            return False
        self.state.fired[key] = amount
        return True

    def _flag(self, signal: Signal, step: int, detail: str, repeats: int) -> None:
        self.state.pending.append(
            LoopEvidence(signal=signal, step=step, action="continue", detail=detail, repeats=repeats)
        )

    def _progress(self) -> None:
        self.state.strikes = 0


_ADVICE: dict[str, str] = {
    "repeated_call": "Repeating it will not give a different result. Do something different: "
    "read the file you want to change, or change the call.",
    "call_cycle": "You are going round in a circle. Change your approach.",
    "same_failure": "Your edits did not change the failure. Read the failing output and the code "
    "it names again, and fix the cause in the code under test, differently.",
    "edit_reverted": "You undid your own edit. Do not flip-flop between versions: decide what "
    "the code must do and make one edit that does it.",
    "degenerate_repetition": "Your last reply repeated itself and was cut off. Reply with one "
    "short tool call.",
    "invalid_calls": "Reply with exactly one tool call in the format shown, with every required "
    "argument.",
}


def _nudge(found: list[LoopEvidence], action: Action) -> str:
    if action == "stop":
        return ""
    lines = [f"Loop detected: {e.detail}." for e in found]
    lines += list(dict.fromkeys(_ADVICE[e.signal] for e in found))
    return "\n".join(lines)

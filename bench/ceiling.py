"""`turnout bench ceiling`: how fast could speculative decoding be on these workloads, here?

The speed of speculative decoding is set by two things: how many of the target's tokens a
drafter can know in advance, and what verifying a batch costs on the machine. This benchmark
separates them. It records once, with plain greedy decoding, the prompt and output of every
call of every workload (`turnout bench speculative`'s workloads), then replays those outputs
through the suffix drafter without the model (greedy output is fixed, so whether a drafted token
would be accepted is known) and prices every verify batch with a cost curve:

- `modelled`: the drafter as it runs, choosing its draft lengths from its own confidence.
- `oracle`: the same drafter's proposals, each verified exactly up to its first wrong token: no
  wasted rows, no timid lengths. No choice of draft lengths can do better with these proposals.
- `bound`: what any drafter that copies from the session could give at best. A token is
  copyable when the token before it was followed by it somewhere earlier in the session (every
  earlier prompt and reply, and this one so far); a free drafter is right about every copyable
  token and drafts nothing else, and the batches are cut at the cheapest lengths (dynamic
  programming over the cost curve). Tokens that are not copyable come one per step, so a reply
  full of new text stays near 1x on any hardware.

Each figure is a speedup over plain decoding (its steps / the replay's cost in steps), for the cost
curve calibrated on this machine and for an H100's measured one, where a batch is far cheaper.
The replay ignores the drafter's own time (a dictionary lookup) and rounding effects of batched
evaluation; `turnout bench speculative` measures the real thing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from turnout.bench.speculative import Bench, _prompt_of
from turnout.bench.workloads import workloads
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local.costcurve import CostCurve
from turnout.runtimes.local.drafters import SuffixDrafter
from turnout.runtimes.local.speculative import best_draft_length

# llama.cpp CUDA on an H100, Qwen2.5-1.5B-shaped Q4_K_M, batch of k against one token
# (docs/measurements.md#batch-cost-on-an-h100).
H100_CURVE = CostCurve(ratios={1: 1.0, 4: 1.7, 16: 2.7, 32: 3.0})
MAX_DRAFT = 32  # as SpeculativeDecoder's default


class CallTrace(BaseModel):
    """One call of a workload under plain greedy decoding."""

    prompt: list[int]
    output: list[int]
    stopped: bool  # ended on the end-of-generation token (else on its token budget)
    max_tokens: int


class Traces(BaseModel):
    model: str
    eog: int  # the end-of-generation token the decoder appends to the context
    curve: CostCurve  # calibrated for this model on this machine
    workloads: dict[str, list[CallTrace]]


class Replay(BaseModel):
    tokens: int
    cost: float  # in one-token steps
    plain_cost: float  # the same calls decoded plainly: one step per batch of one
    drafted: int
    accepted: int

    @property
    def speedup(self) -> float:
        return self.plain_cost / self.cost if self.cost else 1.0


def record(model: str, threads: int, say: Callable[[str], None]) -> Traces:
    """Plain greedy decoding of every workload call (minutes on a CPU)."""
    bench = Bench(model, threads, 4096, ("none",), True, say)
    traced: dict[str, list[CallTrace]] = {}
    for w in workloads():
        say(f"recording {w.name} ...")
        base = bench.run(w, "none")
        traced[w.name] = [
            CallTrace(
                prompt=_prompt_of(bench, w, i, base), output=out,
                stopped=len(out) < call.max_tokens, max_tokens=call.max_tokens,
            )
            for i, (call, out) in enumerate(zip(w.calls, base.tokens))
        ]
    return Traces(model=model, eog=bench.llm.token_eos(), curve=bench.spec.measured_curve(),
                  workloads=traced)


def replay(calls: list[CallTrace], eog: int, curve: CostCurve, *, oracle: bool) -> Replay:
    """The calls of one workload through one suffix drafter (a session), as the decoder runs."""
    drafter = SuffixDrafter()
    result = Replay(tokens=0, cost=0.0, plain_cost=0.0, drafted=0, accepted=0)
    for call in calls:
        out = call.output
        drafter.begin(call.prompt)
        context = list(call.prompt)
        produced = 0
        while produced < len(out):
            context.append(out[produced])  # the target's own choice, from the previous batch
            produced += 1
            if produced == call.max_tokens:
                break  # the budget is spent: no further batch
            # Otherwise a batch runs: the last token, plus any draft (after the last token of a
            # reply that stopped, it is the batch whose first row says "end").
            room = min(MAX_DRAFT, call.max_tokens - produced)
            draft = drafter.propose(context, room)
            proposed = list(draft.tokens)
            right = 0
            while right < len(proposed) and produced + right < len(out) and (
                proposed[right] == out[produced + right]
            ):
                right += 1
            if oracle:
                k = right  # verify exactly what is right
            else:
                k = best_draft_length(draft, curve, drafter.cost_per_token, room)
            accepted = min(k, right)
            result.cost += curve.cost(k + 1)
            if k:
                result.drafted += k
                result.accepted += accepted
                drafter.feedback(k, accepted)
            context.extend(out[produced : produced + accepted])
            produced += accepted
        drafter.finish([*context, eog] if call.stopped else context)
        result.tokens += len(out)
        # Plainly, every token but a budget's last is followed by one more step.
        result.plain_cost += len(out) if call.stopped else len(out) - 1
    return result


def copy_bound(calls: list[CallTrace], curve: CostCurve) -> float:
    """The speedup of a free drafter right about every copyable token (see the module doc)."""
    seen: set[tuple[int, int]] = set()
    cost, plain = 0.0, 0.0
    for call in calls:
        context = list(call.prompt)
        seen.update(itertools.pairwise(context))
        out = call.output
        copyable = []
        for token in out:
            pair = (context[-1], token) if context else (-1, token)
            copyable.append(pair in seen)
            seen.add(pair)
            context.append(token)
        n = len(out)
        if n == 0:
            continue
        # run[i]: how many copyable tokens follow one another from out[i] on.
        run = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            run[i] = run[i + 1] + 1 if copyable[i] else 0
        # best[p]: the least cost to finish once out[p] is chosen (it came from the previous
        # batch's last row, or from the prompt). A batch evaluates it plus k drafted tokens
        # out[p+1 .. p+k], all copyable; its last row chooses out[p+k+1] for free. As in
        # `replay`: a reply that stopped needs one more row to see its end, one cut by its
        # budget none.
        best = [0.0] * n
        best[n - 1] = 1.0 if call.stopped else 0.0
        for p in range(n - 2, -1, -1):
            options = []
            for k in range(min(MAX_DRAFT, run[p + 1], n - 1 - p) + 1):
                rest = best[p + k + 1] if p + k + 1 <= n - 1 else 0.0
                ends = p + k == n - 1  # drafted through the last token: this batch ends it
                options.append(curve.cost(k + 1) + (0.0 if ends else rest))
            best[p] = min(options)
        cost += best[0]
        plain += n if call.stopped else n - 1
    return plain / cost if cost else 1.0


def ceiling_report(traces: Traces) -> dict[str, Any]:
    curves = {"this_machine": traces.curve, "h100": H100_CURVE}
    report: dict[str, Any] = {
        "model": traces.model,
        "curves": {name: {str(k): round(v, 3) for k, v in sorted(c.ratios.items())}
                   for name, c in curves.items()},
        "workloads": {},
    }
    for name, calls in traces.workloads.items():
        entry: dict[str, Any] = {"tokens": sum(len(c.output) for c in calls)}
        for curve_name, curve in curves.items():
            modelled = replay(calls, traces.eog, curve, oracle=False)
            best = replay(calls, traces.eog, curve, oracle=True)
            entry[curve_name] = {
                "modelled": round(modelled.speedup, 3),
                "oracle": round(best.speedup, 3),
                "bound": round(copy_bound(calls, curve), 3),
                "modelled_acceptance": round(modelled.accepted / modelled.drafted, 3)
                if modelled.drafted else None,
            }
        report["workloads"][name] = entry
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        f"model {report['model']}: speedup over plain decoding, replayed from greedy outputs",
        f"{'workload':<10} {'tokens':>6}   {'this machine':>27}   {'H100 (measured)':>27}",
        f"{'':<10} {'':>6}   " + "   ".join([f"{'modelled':>9} {'oracle':>8} {'bound':>8}"] * 2),
    ]
    for name, e in report["workloads"].items():
        cells = "   ".join(
            f"{c['modelled']:>8.2f}x {c['oracle']:>7.2f}x {c['bound']:>7.2f}x"
            for c in (e["this_machine"], e["h100"])
        )
        lines.append(f"{name:<10} {e['tokens']:>6}   {cells}")
    lines.append("oracle: the suffix drafter's proposals verified exactly up to their first wrong token")
    lines.append("bound:  a free drafter right about every token that followed the same token earlier "
                 "in the session, and nothing else")
    return "\n".join(lines)


def traces(model: str, threads: int, path: Path, *, again: bool, say: Callable[[str], None]) -> Traces:
    """The recorded greedy outputs kept in `path`, recorded there first when missing (or
    `again`)."""
    if path.exists() and not again:
        try:
            kept = Traces.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(
                f"{path} is not a traces file ({exc.__class__.__name__}); pass --record to "
                "record it again"
            ) from None
        say(f"replaying the traces in {path} (--record records them again)")
        return kept
    say(f"recording greedy outputs of every workload with {model} (a few minutes) ...")
    recorded = record(model, threads, say)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(recorded.model_dump_json(), encoding="utf-8")
    partial.replace(path)  # whole or not at all
    say(f"traces kept in {path}")
    return recorded

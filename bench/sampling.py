"""`turnout bench sampling`: n sampled candidates as parallel sequences against one greedy
completion and against n separate sampled calls, side by side in one process.

When the greedy fix fails its tests the agent samples more candidates at temperature > 0. On a
CPU a batch of 4 rows costs about 2x one row, so `SpeculativeDecoder.generate_many` decodes the
n candidates as parallel sequences that share the prompt's KV cache, one batch per step. This
measures what that costs, on a prompt that asks for a long rewrite (a ~60-line file with one
fix) with end-of-generation forbidden, so every sequence runs to `--tokens`:

- `greedy`: one greedy completion of T tokens, the unit of cost;
- `parallel-N` for each N in `--n`: N sampled completions (seeds seed..seed+N-1) in one loop;
- `sequential-N` (N = the first of `--n`): the same N completions as N separate calls.

Every mode starts from the same cache state: the prompt cached but for its last token (the
state after any earlier call on that prompt), so each call evaluates that one token alone, then
decodes; prefill is reported apart from decode. Ratios are decode seconds over the greedy
completion's in the same round, medians over rounds; per token divides by the tokens generated.

Exactness: each parallel sequence against the same seed sampled alone (the sequential calls,
plus lone reference calls for the seeds they do not cover, run once and not timed). Where they
differ, the report gives the first position and, from the lone run's logits there: the gap of
the top two logits, the gap between the two tokens that were chosen (for sampling this is the
near tie that matters: a draw that lands near the boundary of two tokens flips with rounding)
and the largest difference between the two runs' logits at that position. With llama.cpp's
default attention the parallel sequences drift from their lone replies by rounding (see
`SpeculativeDecoder.generate_many`); `--flash-attn` makes them equal bit for bit.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from turnout.bench.speculative import first_difference
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.speculative import (
    NEAR_TIE_GAP,
    Generation,
    LocalSpeculation,
    llama_with_sequences,
)

# A ~60-line module with one bug (`median` of an even-length list): the model is asked for the
# whole file back, which is several hundred tokens, more than the default budget.
SOURCE = '''\
"""Small statistics helpers for the report module."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of an empty sequence")
    return sum(values) / len(values)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2 == 1:
        return ordered[middle]
    return ordered[middle]


def variance(values: Sequence[float], sample: bool = True) -> float:
    if len(values) < 2:
        raise ValueError("variance needs at least two values")
    centre = mean(values)
    total = sum((v - centre) ** 2 for v in values)
    return total / (len(values) - 1 if sample else len(values))


def stdev(values: Sequence[float], sample: bool = True) -> float:
    return math.sqrt(variance(values, sample))


def percentile(values: Sequence[float], q: float) -> float:
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def histogram(values: Iterable[float], bins: int = 10) -> list[int]:
    data = list(values)
    if not data:
        return [0] * bins
    low, high = min(data), max(data)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in data:
        index = min(int((v - low) / width), bins - 1)
        counts[index] += 1
    return counts


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"mean": mean(values), "median": median(values), "stdev": stdev(values)}
'''
TASK = (
    "The test `median([1, 2, 3, 4]) == 2.5` fails. Fix the bug and return the whole file, "
    "corrected, in one ```python block, with nothing before or after it:\n\n"
    f"```python\n{SOURCE}```"
)


def prompt_messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": TASK}]


def divergence(alone: Generation, together: Generation) -> dict[str, Any] | None:
    """Where a parallel sequence first differs from the same seed sampled alone, and how near
    a tie that position was in the lone run's logits (`diagnostics=True` runs)."""
    pos = first_difference(together.tokens, alone.tokens)
    if pos is None:
        return None
    entry: dict[str, Any] = {"position": pos, "top2_gap": None, "chosen_gap": None,
                             "max_logit_delta": None}
    if pos < len(alone.top) and pos < len(together.top):
        ids, logits = alone.top[pos]
        entry["top2_gap"] = round(logits[0] - logits[1], 4)
        mine = dict(zip(*together.top[pos]))
        theirs = dict(zip(ids, logits))
        a = alone.tokens[pos] if pos < len(alone.tokens) else None
        b = together.tokens[pos] if pos < len(together.tokens) else None
        if a in theirs and b in theirs:
            entry["chosen_gap"] = round(abs(theirs[a] - theirs[b]), 4)
        shared = [t for t in ids if t in mine]
        if shared:
            entry["max_logit_delta"] = round(max(abs(theirs[t] - mine[t]) for t in shared), 4)
    return entry


class SamplingBench:
    def __init__(
        self, model: str, threads: int, n_ctx: int, n_seq_max: int, say: Callable[[str], None],
        flash_attn: bool = False,
    ) -> None:
        self.say = say
        self.model = model
        self.threads = threads
        self.flash_attn = flash_attn
        path = models.resolve(model)
        self.llm = llama_with_sequences(
            n_seq_max, model_path=str(path), n_ctx=n_ctx, n_threads=threads,
            n_threads_batch=threads, flash_attn=flash_attn, verbose=False,
        )
        self.spec = LocalSpeculation(
            self.llm, model_path=path, n_threads=threads, n_gpu_layers=0,
            draft_model="qwen2.5-coder-0.5b", calibrate=False,
        )
        self.decoder = self.spec.decoder
        if self.decoder.max_sequences < n_seq_max:
            raise UsageError(
                f"the context decodes {self.decoder.max_sequences} sequences at once, "
                f"{n_seq_max} are needed"
            )
        self.prompt = self.spec.prompt_tokens(prompt_messages())
        started = time.perf_counter()
        self.decoder.forget()
        self.decoder.prefill(self.prompt)  # the cache every mode starts from
        self.cold_prefill_seconds = time.perf_counter() - started

    def greedy(self, tokens: int) -> Generation:
        return self.decoder.generate(self.prompt, max_tokens=tokens, ignore_eos=True)

    def alone(self, tokens: int, temperature: float, seed: int) -> Generation:
        return self.decoder.generate(
            self.prompt, max_tokens=tokens, temperature=temperature, seed=seed, ignore_eos=True,
            diagnostics=True,
        )

    def parallel(self, n: int, tokens: int, temperature: float, seed: int) -> Any:
        return self.decoder.generate_many(
            self.prompt, n=n, max_tokens=tokens, temperature=temperature, seed=seed,
            ignore_eos=True, diagnostics=True,
        )


def run_bench(
    *, model: str, threads: int, tokens: int, ns: list[int], rounds: int, temperature: float,
    seed: int, n_ctx: int, say: Callable[[str], None], flash_attn: bool = False,
) -> dict[str, Any]:
    if not ns or min(ns) < 2:
        raise UsageError(f"--n takes sizes of at least 2, got {ns}")
    seq_n = ns[0]
    say(f"loading {model} ({threads} threads, n_seq_max {max(ns)}, flash attention "
        f"{'on' if flash_attn else 'off'}) ...")
    bench = SamplingBench(model, threads, n_ctx, max(ns), say, flash_attn)
    need = len(bench.prompt) + max(ns) * tokens
    if need > bench.decoder._n_ctx:
        raise UsageError(f"{max(ns)} x {tokens} tokens after a {len(bench.prompt)}-token prompt "
                         f"need n_ctx >= {need}; pass --n-ctx")
    say(f"prompt {len(bench.prompt)} tokens, cold prefill {bench.cold_prefill_seconds:.1f}s")
    modes = ["greedy", *[f"parallel-{n}" for n in ns], f"sequential-{seq_n}"]
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    alone: dict[int, Generation] = {}
    together: dict[int, list[Generation]] = {}
    for round_no in range(rounds):
        shift = round_no % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            started = time.perf_counter()
            if mode == "greedy":
                g = bench.greedy(tokens)
                entry = {"decode_s": g.decode_seconds, "prefill_s": g.prefill_seconds,
                         "tokens": [len(g.tokens)], "steps": g.step_seconds}
            elif mode.startswith("parallel-"):
                n = int(mode.split("-")[1])
                p = bench.parallel(n, tokens, temperature, seed)
                together.setdefault(n, p.sequences)
                entry = {"decode_s": p.decode_seconds, "prefill_s": p.prefill_seconds,
                         "tokens": [len(s.tokens) for s in p.sequences], "steps": p.step_seconds}
            else:
                gens = [bench.alone(tokens, temperature, seed + i) for i in range(seq_n)]
                for i, g in enumerate(gens):
                    alone.setdefault(seed + i, g)
                entry = {"decode_s": sum(g.decode_seconds for g in gens),
                         "prefill_s": sum(g.prefill_seconds for g in gens),
                         "tokens": [len(g.tokens) for g in gens],
                         "steps": [t for g in gens for t in g.step_seconds]}
            runs[mode].append(entry)
            say(f"round {round_no + 1}/{rounds} {mode:<13} decode {entry['decode_s']:6.1f}s "
                f"({sum(entry['tokens'])} tokens, {time.perf_counter() - started:5.1f}s)")
    for s in range(seed, seed + max(ns)):
        if s not in alone:
            say(f"reference: seed {s} sampled alone (not timed) ...")
            alone[s] = bench.alone(tokens, temperature, s)
    return summarize(bench, modes, runs, alone, together, tokens, temperature, seed, rounds)


def summarize(
    bench: Any, modes: list[str], runs: dict[str, list[dict[str, Any]]],
    alone: dict[int, Generation], together: dict[int, list[Generation]], tokens: int,
    temperature: float, seed: int, rounds: int,
) -> dict[str, Any]:
    greedy = runs["greedy"]
    greedy_quiet = quiet_cost(greedy)
    report: dict[str, Any] = {
        "model": bench.model, "threads": bench.threads, "rounds": rounds, "tokens": tokens,
        "temperature": temperature, "seed": seed, "flash_attn": bench.flash_attn,
        "prompt_tokens": len(bench.prompt),
        "cold_prefill_s": round(bench.cold_prefill_seconds, 2),
        "near_tie_gap": NEAR_TIE_GAP, "modes": {},
    }
    for mode in modes:
        rs = runs[mode]
        ratios = [r["decode_s"] / g["decode_s"] for r, g in zip(rs, greedy)]
        per_token = [
            (r["decode_s"] / max(sum(r["tokens"]), 1)) / (g["decode_s"] / max(sum(g["tokens"]), 1))
            for r, g in zip(rs, greedy)
        ]
        entry: dict[str, Any] = {
            "decode_s": round(statistics.median(r["decode_s"] for r in rs), 2),
            "prefill_s": round(statistics.median(r["prefill_s"] for r in rs), 3),
            "tokens_per_sequence": rs[0]["tokens"],
            "ratio_vs_greedy": round(statistics.median(ratios), 3),
            "per_token_vs_greedy": round(statistics.median(per_token), 3),
            "ratio_by_round": [round(x, 3) for x in ratios],
            "steps": len(rs[0]["steps"]),
            "step_p25_ms": round(1000 * quartile(s for r in rs for s in r["steps"]), 1),
            "quiet_ratio_vs_greedy": round(quiet_cost(rs) / greedy_quiet, 3),
        }
        if mode.startswith("parallel-"):
            n = int(mode.split("-")[1])
            sequences = []
            for i, seq in enumerate(together[n]):
                diff = divergence(alone[seed + i], seq)
                sequences.append({"seed": seed + i, "identical_to_alone": diff is None,
                                  "divergence": diff})
            entry["sequences"] = sequences
            entry["identical"] = sum(s["identical_to_alone"] for s in sequences)
        report["modes"][mode] = entry
    return report


def quartile(values: Any) -> float:
    """The 25th percentile: a decode step's cost with little of the noise other processes on
    a shared CPU add (a step they slow down is slower, never faster)."""
    data = sorted(values)
    return statistics.quantiles(data, n=4)[0] if len(data) > 1 else (data[0] if data else 0.0)


def quiet_cost(rs: list[dict[str, Any]]) -> float:
    """A mode's decode cost on a quiet machine: its steps times their 25th-percentile cost."""
    return len(rs[0]["steps"]) * quartile(s for r in rs for s in r["steps"])


def render(report: dict[str, Any]) -> str:
    lines = [
        (f"model {report['model']}, {report['threads']} threads, {report['tokens']} tokens per "
        f"sequence, temperature {report['temperature']}, flash attention "
        f"{'on' if report.get('flash_attn') else 'off'}, {report['rounds']} round(s) (medians); "
        f"prompt {report['prompt_tokens']} tokens (cold prefill {report['cold_prefill_s']}s, "
        f"then cached for every mode)"),
        (f"{'mode':<14}{'decode s':>10}{'x greedy':>10}{'per token':>11}{'quiet x':>9}"
         f"{'step ms':>9}{'prefill s':>11}{'tokens/seq':>12}  same as alone"),
    ]
    for mode, e in report["modes"].items():
        toks = e["tokens_per_sequence"]
        tok_cell = str(toks[0]) if len(set(toks)) == 1 else ",".join(map(str, toks))
        same = ""
        if "sequences" in e:
            same = f"{e['identical']}/{len(e['sequences'])}"
            for s in e["sequences"]:
                d = s["divergence"]
                if d is not None:
                    same += (f"; seed {s['seed']} @{d['position']} top2 {d['top2_gap']} "
                             f"chosen {d['chosen_gap']} delta {d['max_logit_delta']}")
        lines.append(f"{mode:<14}{e['decode_s']:>10.1f}{e['ratio_vs_greedy']:>9.2f}x"
                     f"{e['per_token_vs_greedy']:>10.2f}x{e['quiet_ratio_vs_greedy']:>8.2f}x"
                     f"{e['step_p25_ms']:>9.1f}{e['prefill_s']:>11.2f}{tok_cell:>12}  {same}")
    lines.append("x greedy: decode seconds over one greedy completion's (median of rounds); per "
                 "token: the same per generated token; quiet x: the same from each mode's "
                 "25th-percentile step time (steps x step ms), which other processes on a shared "
                 "CPU disturb far less; same as alone: sequences equal to their seed sampled alone")
    return "\n".join(lines)

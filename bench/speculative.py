"""`turnout bench speculative`: our drafters against no speculation and llama-cpp-python's
prompt lookup, side by side in one process, on agent-shaped workloads.

Modes: `none` (turnout's loop, no drafts: the baseline), `prompt-lookup` (llama-cpp-python's
`Llama(draft_model=LlamaPromptLookupDecoding(), logits_all=True)`, its only working setting),
`suffix` and `draft-model` (turnout's drafters). Every mode runs every workload once per round
and the rounds interleave the modes, so a noisy shared CPU slows them alike; figures are medians
over rounds. Decode speed counts the tokens after the first one over the time after the first
one (the first comes with the prefill in every mode).

Memory: peak RSS is measured per run as the growth of the process's high-water mark over what
was resident before the run, plus the resident size of the target model (and, for draft-model,
of the draft model it loads). The prompt-lookup instance's own copy of the weights stands in
for the target's, so its figure is what that setting costs when it is the only one loaded.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from turnout.bench.workloads import Workload, workloads
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.drafters import SuffixDrafter
from turnout.runtimes.local.speculative import (
    Generation,
    LocalSpeculation,
    peak_rss_mb,
    peak_rss_reset,
)

MODES = ("none", "prompt-lookup", "suffix", "draft-model")


class RunResult(BaseModel):
    """One workload in one mode, one round: every call's output and timings."""

    texts: list[str]
    tokens: list[list[int]]
    decoded: int  # tokens after each call's first
    decode_seconds: float
    drafted: int = 0
    accepted: int = 0
    draft_steps: int = 0
    rss_growth_mb: float = 0.0


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Bench:
    def __init__(
        self, model: str, threads: int, n_ctx: int, modes: tuple[str, ...], calibrate: bool,
        say: Callable[[str], None],
    ) -> None:
        import llama_cpp  # loaded when the benchmark runs, not when `turnout --help` lists it

        self.say = say
        self.model = model
        self.threads = threads
        path = models.resolve(model)
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
            verbose=False,
        )
        if calibrate:
            say(f"calibrating the batch cost curve for {model} ({threads} threads; cached) ...")
        self.spec = LocalSpeculation(
            self.llm, model_path=path, n_threads=threads, n_gpu_layers=0,
            draft_model="qwen2.5-coder-0.5b", calibrate=calibrate,
        )
        warm = self.spec.prompt_tokens([{"role": "user", "content": "Say hi."}])
        self.spec.decoder.generate(warm, max_tokens=4)
        self.target_resident_mb = resident_mb()
        say(f"cost curve: { {k: round(v, 2) for k, v in sorted(self.spec.measured_curve().ratios.items())} }")
        self.lookup_llm: Any = None
        if "prompt-lookup" in modes:
            say("loading llama-cpp-python's prompt-lookup instance (logits_all=True) ...")
            self.lookup_llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                logits_all=True,
                draft_model=llama_cpp.llama_speculative.LlamaPromptLookupDecoding(),
                verbose=False,
            )
        self.draft_drafter: Any = None
        self.draft_resident_mb = 0.0
        if "draft-model" in modes:
            before = resident_mb()
            say("loading the draft model (qwen2.5-coder-0.5b) ...")
            self.draft_drafter = self.spec.drafter("draft-model")
            self.draft_resident_mb = resident_mb() - before
            say(f"draft model: one drafted token costs {self.draft_drafter.cost_per_token:.2f} "
                f"target steps")

    # --- one run ------------------------------------------------------------------------

    def run(self, workload: Workload, mode: str) -> RunResult:
        texts: list[str] = []
        tokens: list[list[int]] = []
        history: list[dict[str, str]] = []
        decoded, seconds, drafted, accepted, steps, growth = 0, 0.0, 0, 0, 0, 0.0
        suffix = SuffixDrafter()  # a fresh session per run: no memory of earlier rounds
        # Every run starts from an empty cache: a prefix reused from another mode's run was
        # evaluated in other batches, and that alone can flip a near tie later on.
        self.spec.decoder.forget()
        if self.lookup_llm is not None:
            self.lookup_llm.reset()
        for call in workload.calls:
            if call.carry_reply:
                history.extend(call.messages)
                messages = list(history)
            else:
                messages = call.messages
            prompt = self.spec.prompt_tokens(messages)
            rss_before = resident_mb()
            peak_rss_reset()
            if mode == "prompt-lookup":
                out, secs = self._lookup(prompt, call.max_tokens)
                gen = None
            else:
                drafter = {"none": self.spec.drafter("none"), "suffix": suffix,
                           "draft-model": self.draft_drafter}[mode]
                gen = self.spec.decoder.generate(prompt, max_tokens=call.max_tokens, drafter=drafter)
                out, secs = gen.tokens, gen.decode_seconds
            growth = max(growth, peak_rss_mb() - rss_before)
            text = self.llm.detokenize(out, prev_tokens=prompt).decode("utf-8", errors="ignore")
            texts.append(text)
            tokens.append(out)
            decoded += max(len(out) - 1, 0)
            seconds += secs
            if isinstance(gen, Generation):
                drafted += gen.drafted
                accepted += gen.accepted
                steps += gen.draft_steps
            if call.carry_reply:
                history.append({"role": "assistant", "content": text})
        return RunResult(texts=texts, tokens=tokens, decoded=decoded, decode_seconds=seconds,
                         drafted=drafted, accepted=accepted, draft_steps=steps,
                         rss_growth_mb=growth)

    def _lookup(self, prompt: list[int], max_tokens: int) -> tuple[list[int], float]:
        """llama-cpp-python's own speculative path; tokens counted as it yields them."""
        import llama_cpp  # as in __init__

        llm = self.lookup_llm
        out: list[int] = []
        first_at = 0.0
        vocab = llm._model.vocab
        # Driving `generate` directly yields tokens (create_completion yields text); it is
        # the loop create_completion runs, draft model and all.
        for token in llm.generate(prompt, temp=0.0, top_k=40, top_p=0.95, min_p=0.05,
                                  repeat_penalty=1.0):
            if not out and first_at == 0.0:
                first_at = time.perf_counter()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            out.append(int(token))
            if len(out) >= max_tokens:
                break
        return out, time.perf_counter() - first_at if first_at else 0.0

    # --- divergence ---------------------------------------------------------------------

    def top2_gap(self, prompt: list[int], prefix: list[int]) -> float:
        import numpy as np  # llama-cpp-python's dependency, loaded with it

        logits = np.array(self.spec.decoder.next_logits(prompt + prefix))
        top = np.sort(logits)[-2:]
        return float(top[1] - top[0])


def first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def run_bench(
    *, model: str, threads: int, rounds: int, modes: tuple[str, ...], only: list[str] | None,
    n_ctx: int, calibrate: bool, say: Callable[[str], None], max_tokens: int = 0,
) -> dict[str, Any]:
    bench = Bench(model, threads, n_ctx, modes, calibrate, say)
    by_name = {w.name: w for w in workloads()}
    unknown = [n for n in only or [] if n not in by_name]
    if unknown:
        raise UsageError(f"unknown workloads {unknown}: choose from {', '.join(by_name)}")
    chosen = [by_name[n] for n in only] if only else list(by_name.values())
    if max_tokens > 0:
        for w in chosen:
            for call in w.calls:
                call.max_tokens = min(call.max_tokens, max_tokens)
    results: dict[str, dict[str, list[RunResult]]] = {w.name: {m: [] for m in modes} for w in chosen}
    for round_no in range(rounds):
        for w in chosen:
            # Rotate the order each round so no mode always runs first (or after the same one).
            order = list(modes[round_no % len(modes):] + modes[: round_no % len(modes)])
            for mode in order:
                started = time.perf_counter()
                r = bench.run(w, mode)
                results[w.name][mode].append(r)
                tps = r.decoded / r.decode_seconds if r.decode_seconds else 0.0
                say(f"round {round_no + 1}/{rounds} {w.name:<9} {mode:<13} {tps:6.2f} tok/s "
                    f"({r.decoded} tokens, {time.perf_counter() - started:5.1f}s)")
            # Partial results as they come: a long run cut short still leaves its figures.
            partial = summarize(bench, [w], modes, {w.name: results[w.name]}, round_no + 1)
            say("partial " + json.dumps(partial["workloads"]))
    return summarize(bench, chosen, modes, results, rounds)


def summarize(
    bench: Any, chosen: list[Workload], modes: tuple[str, ...],
    results: dict[str, dict[str, list[RunResult]]], rounds: int,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "model": bench.model, "threads": bench.threads, "rounds": rounds,
        "cost_curve": {str(k): round(v, 3) for k, v in sorted(bench.spec.measured_curve().ratios.items())},
        "draft_model_cost_per_token": round(bench.draft_drafter.cost_per_token, 3)
        if "draft-model" in modes else None,
        "workloads": {},
    }
    for w in chosen:
        per_mode: dict[str, Any] = {}
        base_runs = results[w.name]["none"] if "none" in modes else []
        base_tps = statistics.median(
            r.decoded / r.decode_seconds for r in base_runs
        ) if base_runs else 0.0
        reference = base_runs[0].tokens if base_runs else None
        for mode in modes:
            runs = results[w.name][mode]
            tps = statistics.median(r.decoded / r.decode_seconds for r in runs if r.decode_seconds)
            first = runs[0]
            identical = reference is not None and all(r.tokens == reference for r in runs)
            entry: dict[str, Any] = {
                "decode_tps": round(tps, 2),
                "speedup_vs_none": round(tps / base_tps, 3) if base_tps else None,
                "acceptance": round(first.accepted / first.drafted, 3) if first.drafted else None,
                "mean_accepted": round(first.accepted / first.draft_steps, 2)
                if first.draft_steps else None,
                "drafted": first.drafted,
                "identical_to_none": identical,
                "peak_rss_mb": round(
                    bench.target_resident_mb
                    + (bench.draft_resident_mb if mode == "draft-model" else 0.0)
                    + max(r.rss_growth_mb for r in runs), 1),
                "tokens": sum(len(t) for t in first.tokens),
            }
            if mode == "prompt-lookup":
                entry["acceptance"] = None  # the library does not report it
                entry["mean_accepted"] = None
            entry["divergence"] = None
            if reference is not None and not identical:
                for call_no, (mine, ref) in enumerate(zip(first.tokens, reference)):
                    pos = first_difference(mine, ref)
                    if pos is not None:
                        prompt = _prompt_of(bench, w, call_no, base_runs[0])
                        entry["divergence"] = {
                            "call": call_no, "position": pos,
                            "top2_gap": round(bench.top2_gap(prompt, ref[:pos]), 4),
                        }
                        break
            per_mode[mode] = entry
        report["workloads"][w.name] = per_mode
    return report


def _prompt_of(bench: Bench, w: Workload, call_no: int, base: RunResult) -> list[int]:
    """The prompt the none run saw for one call (histories carry its earlier replies)."""
    history: list[dict[str, str]] = []
    messages: list[dict[str, str]] = []
    for i, call in enumerate(w.calls[: call_no + 1]):
        if call.carry_reply:
            history.extend(call.messages)
            messages = list(history)
            history.append({"role": "assistant", "content": base.texts[i]})
        else:
            messages = call.messages
    return bench.spec.prompt_tokens(messages)


def render(report: dict[str, Any]) -> str:
    modes = list(next(iter(report["workloads"].values())).keys()) if report["workloads"] else []
    lines = [
        (f"model {report['model']}, {report['threads']} threads, {report['rounds']} rounds "
        f"(medians); speedup = decode tok/s against `none` in the same run"),
        f"{'workload':<10}" + "".join(f"{m:>24}" for m in modes),
    ]
    for name, per_mode in report["workloads"].items():
        cells = []
        for m in modes:
            e = per_mode[m]
            same = "=" if e["identical_to_none"] else "!"
            acc = f"{e['acceptance']:.2f}" if e["acceptance"] is not None else "  - "
            cells.append(f"{e['decode_tps']:6.1f} {e['speedup_vs_none']:5.2f}x {acc} {same}")
        lines.append(f"{name:<10}" + "".join(f"{c:>24}" for c in cells))
    lines.append("cells: tok/s, speedup, acceptance, '=' identical to none / '!' differs")
    return "\n".join(lines)

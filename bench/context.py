"""`turnout bench context`: the context cliff. How prefill speed, time to first token, decode
speed, KV memory and the greedy output change as the prompt grows, for each KV cache setting,
side by side in one process.

The prompt is a repository dump (turnout's own source: real code, no repetition) cut to each
length, then a question whose answer runs long. Per length and setting:

- cold: an empty cache, the whole prompt prefilled (seed 003's "cold prompt"); time to first
  token and prefill tok/s.
- decode: the greedy reply's tokens after the first over the time after the first, at that depth.
- warm: the agent's next turn (the same dump, the reply, a short new user turn) on the cache the
  cold call left: only the new tokens are evaluated. Its time to first token is what an agent
  waits per step once the repository is in the cache.
- KV MB: the bytes llama.cpp needs to copy sequence 0's cache after the cold call (measured by
  `llama_state_seq_get_size`, so it grows with the prompt and shrinks with a quantized cache).
- same output: the cold reply's tokens against the first setting's at the same length.

Settings (llama.cpp context parameters; every setting loads the model once, the rounds
interleave them so a noisy shared CPU slows them alike; figures are medians over rounds):
`f16` is llama-cpp-python's default (f16 keys and values, flash attention off); `f16-fa` turns
flash attention on; `q8_0-fa` stores keys and values as q8_0 (llama.cpp quantizes the V cache
only with flash attention).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import turnout.agent
import turnout.bench
import turnout.router
import turnout.runtimes
import turnout.tools
from pydantic import BaseModel
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.speculative import LocalSpeculation

KV_SETTINGS: dict[str, dict[str, Any]] = {
    "f16": {},
    "f16-fa": {"flash_attn": True},
    "q8_0-fa": {"flash_attn": True, "type_k": 8, "type_v": 8},  # 8 = GGML_TYPE_Q8_0
}
DEFAULT_LENGTHS = (1024, 2048, 4096, 8192)
QUESTION = (
    "List every function and method defined in the files above, one per line, as "
    "`path: name(arguments)`, in the order they appear."
)
NEXT_TURN = (
    "The tests now fail with `AssertionError: expected 3 tool calls, got 2` in "
    "tests/test_guards.py. Which function above is most likely wrong, and why? One paragraph."
)
# Room the warm turn needs after the longest prompt: the cold reply plus the next user turn.
WARM_ROOM = 160


class Point(BaseModel):
    """One setting at one prompt length: medians over rounds."""

    setting: str
    prompt_tokens: int
    prefill_tps: float
    first_token_cold_s: float
    first_token_warm_s: float
    warm_new_tokens: int  # tokens the warm call evaluated (the rest came from the cache)
    decode_tps: float
    decode_vs_shortest: float  # decode tok/s against this setting's shortest prompt
    kv_mb: float
    same_output: bool  # the cold reply equals the first setting's at this length


class Sample(BaseModel):
    prompt_tokens: int
    prefill_tps: float
    first_token_cold_s: float
    first_token_warm_s: float
    warm_new_tokens: int
    decode_tps: float
    kv_mb: float
    reply: list[int]


def source_dump() -> str:
    """turnout's own Python source, file by file: a real repository's worth of code."""
    parts = []
    for package in (turnout.runtimes, turnout.router, turnout.agent, turnout.tools, turnout.bench):
        folder = Path(package.__file__).parent  # type: ignore[arg-type]
        for path in sorted(folder.glob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.strip():
                parts.append(f"### {folder.name}/{path.name}\n{text}")
    return "\n".join(parts)


class Setting:
    """One KV cache setting: its own llama.cpp context over the same model file, driven by
    turnout's decode loop (no drafts) as the local runtime drives it."""

    def __init__(self, name: str, path: Path, n_ctx: int, threads: int) -> None:
        import llama_cpp  # loaded when the benchmark runs, not when `turnout --help` lists it

        self.name = name
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                verbose=False, **KV_SETTINGS[name],
            )
        except (ValueError, RuntimeError) as exc:
            raise UsageError(
                f"llama.cpp could not make a context with KV setting {name!r} ({exc}); "
                f"leave it out of --kv"
            ) from exc
        # Nothing is drafted here, so the batch cost curve is never used: no calibration.
        self.spec = LocalSpeculation(
            self.llm, model_path=path, n_threads=threads, n_gpu_layers=0,
            draft_model="qwen2.5-coder-0.5b", calibrate=False,
        )

    def kv_mb(self) -> float:
        import llama_cpp  # as in __init__

        return llama_cpp.llama_state_seq_get_size(self.llm.ctx, 0) / 2**20


class Prompts:
    """The cold prompt of each length and the warm turn that follows it."""

    def __init__(self, setting: Setting, lengths: Sequence[int]) -> None:
        self._spec = setting.spec
        llm = setting.llm
        self._detokenize = lambda tokens: llm.detokenize(tokens).decode("utf-8", errors="ignore")
        dump_tokens = llm.tokenize(source_dump().encode("utf-8"), add_bos=False)
        overhead = len(self._spec.prompt_tokens(self.messages("")))
        self.dumps: dict[int, str] = {}
        self.cold: dict[int, list[int]] = {}
        for length in lengths:
            room = length - overhead
            if room < 16:
                raise UsageError(
                    f"--lengths: {length} tokens leaves no room for the dump; use at least "
                    f"{overhead + 16}"
                )
            if room > len(dump_tokens):
                raise UsageError(
                    f"--lengths: {length} tokens is more than turnout's source holds "
                    f"({len(dump_tokens) + overhead}); use shorter lengths"
                )
            self.dumps[length] = self._detokenize(dump_tokens[:room])
            self.cold[length] = self._spec.prompt_tokens(self.messages(self.dumps[length]))

    @staticmethod
    def messages(dump: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": "You are a careful coding assistant."},
            {"role": "user", "content": f"{dump}\n\n{QUESTION}"},
        ]

    def warm(self, length: int, reply: list[int]) -> list[int]:
        """The agent's next turn after the cold call: it starts with the whole cold prompt."""
        messages = [
            *self.messages(self.dumps[length]),
            {"role": "assistant", "content": self._detokenize(reply)},
            {"role": "user", "content": NEXT_TURN},
        ]
        return self._spec.prompt_tokens(messages)


def measure(setting: Setting, cold: list[int], warm_of: Callable[[list[int]], list[int]], decode: int) -> Sample:
    decoder = setting.spec.decoder
    decoder.forget()  # cold: nothing of the prompt in the cache
    first = decoder.generate(cold, max_tokens=decode)
    kv_mb = setting.kv_mb()
    after_first = len(first.tokens) - 1
    second = decoder.generate(warm_of(first.tokens), max_tokens=1)
    return Sample(
        prompt_tokens=len(cold),
        prefill_tps=(len(cold) - first.cached_prompt_tokens) / first.prefill_seconds,
        first_token_cold_s=first.prefill_seconds,
        first_token_warm_s=second.prefill_seconds,
        warm_new_tokens=second.prompt_tokens - second.cached_prompt_tokens,
        decode_tps=after_first / first.decode_seconds if after_first > 0 and first.decode_seconds > 0 else 0.0,
        kv_mb=kv_mb,
        reply=first.tokens,
    )


def run_bench(
    *, model: str, threads: int, rounds: int, lengths: Sequence[int], settings: Sequence[str],
    decode: int, say: Callable[[str], None],
) -> dict[str, Any]:
    path = models.resolve(model)
    n_ctx = max(lengths) + decode + WARM_ROOM
    say(f"loading {model} once per KV setting ({', '.join(settings)}), n_ctx {n_ctx} ...")
    loaded = [Setting(settings[0], path, n_ctx, threads)]
    trained = loaded[0].llm._model.n_ctx_train()
    if n_ctx > trained:
        raise UsageError(
            f"--lengths: {max(lengths)} tokens plus the reply and the next turn needs a context of "
            f"{n_ctx}, more than {model} was trained for ({trained}); use shorter lengths"
        )
    loaded += [Setting(name, path, n_ctx, threads) for name in settings[1:]]
    prompts = Prompts(loaded[0], lengths)
    samples: dict[tuple[str, int], list[Sample]] = {}
    for r in range(rounds):
        for length in lengths:
            cold = prompts.cold[length]
            for setting in loaded:
                say(f"round {r + 1}/{rounds}: {setting.name} at {len(cold)} prompt tokens ...")
                s = measure(setting, cold, lambda reply, n=length: prompts.warm(n, reply), decode)
                samples.setdefault((setting.name, length), []).append(s)
    return report(model, threads, rounds, n_ctx, decode, lengths, settings, samples)


def report(
    model: str, threads: int, rounds: int, n_ctx: int, decode: int, lengths: Sequence[int],
    settings: Sequence[str], samples: dict[tuple[str, int], list[Sample]],
) -> dict[str, Any]:
    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    points: list[Point] = []
    for name in settings:
        shortest = med([s.decode_tps for s in samples[(name, lengths[0])]])
        for length in lengths:
            runs = samples[(name, length)]
            reference = samples[(settings[0], length)]
            decode_tps = med([s.decode_tps for s in runs])
            points.append(Point(
                setting=name, prompt_tokens=runs[0].prompt_tokens,
                prefill_tps=med([s.prefill_tps for s in runs]),
                first_token_cold_s=med([s.first_token_cold_s for s in runs]),
                first_token_warm_s=med([s.first_token_warm_s for s in runs]),
                warm_new_tokens=runs[0].warm_new_tokens,
                decode_tps=decode_tps,
                decode_vs_shortest=round(decode_tps / shortest, 3) if shortest else 0.0,
                kv_mb=med([s.kv_mb for s in runs]),
                # Every round must agree: a setting that differs once is not exact.
                same_output=all(s.reply == ref.reply for s, ref in zip(runs, reference)),
            ))
    return {
        "model": model, "threads": threads, "rounds": rounds, "n_ctx": n_ctx,
        "decode_tokens": decode, "points": [p.model_dump() for p in points],
    }


def render(report: dict[str, Any]) -> str:
    first = report["points"][0]["setting"] if report["points"] else "-"
    lines = [
        (f"model {report['model']}, {report['threads']} threads, {report['rounds']} round(s) "
        f"(medians), n_ctx {report['n_ctx']}, replies of up to {report['decode_tokens']} tokens"),
        (f"{'kv':<8} {'prompt':>7} {'prefill':>8} {'1st token':>10} {'1st token':>10} "
        f"{'decode':>7} {'decode vs':>10} {'KV':>7} {'same as':>8}"),
        (f"{'':<8} {'tokens':>7} {'tok/s':>8} {'cold s':>10} {'warm s':>10} "
        f"{'tok/s':>7} {'shortest':>10} {'MB':>7} {first:>8}"),
    ]
    for p in report["points"]:
        lines.append(
            f"{p['setting']:<8} {p['prompt_tokens']:>7} {p['prefill_tps']:>8.1f} "
            f"{p['first_token_cold_s']:>10.2f} {p['first_token_warm_s']:>10.2f} "
            f"{p['decode_tps']:>7.1f} {p['decode_vs_shortest']:>9.2f}x {p['kv_mb']:>7.1f} "
            f"{'=' if p['same_output'] else '!':>8}"
        )
    lines.append("warm: the agent's next turn on the cache the cold call left (only the reply and "
                 "the new user turn are evaluated)")
    return "\n".join(lines)


def parse_lengths(text: str) -> list[int]:
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--lengths takes a comma list of token counts, like 1024,4096; got {text!r}") from None
    if not lengths or any(n < 1 for n in lengths):
        raise UsageError(f"--lengths takes positive token counts, like 1024,4096; got {text!r}")
    return sorted(set(lengths))


def parse_settings(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in KV_SETTINGS]
    if not names or unknown:
        raise UsageError(f"--kv takes a comma list of {', '.join(KV_SETTINGS)}; got {text!r}")
    return list(dict.fromkeys(names))

"""Lossless speculative decoding on llama.cpp's low-level API (`llama_batch`, `llama_decode`).

`SpeculativeDecoder` owns one llama.cpp context (sequence 0) and generates from a list of prompt
tokens. Each step evaluates the token just chosen plus the tokens a `Drafter` guesses come next,
in one batch, asking for logits only on those rows. The target model then chooses its own token
row by row, through a llama.cpp sampler chain (greedy, or the same top-k/top-p/min-p/temperature
chain llama-cpp-python uses, optionally behind a grammar): while its choice equals the draft, the
next row is still valid; at the first difference the choice is kept, the rest of the batch is
dropped from the KV cache with `llama_memory_seq_rm`, and the drafter is told how far it got.

Because every emitted token is the target's own choice from its own distribution (greedy or
sampled: "sample and compare"), the output is the one plain decoding would give, up to the
rounding differences between batch widths that llama.cpp's kernels have. A grammar sits in the
same chain, so a draft token the grammar forbids can never equal the choice: it is rejected.

The KV cache is kept across calls, so a prompt that starts with the previous call's prompt and
output (a chat that goes on) only evaluates its new tail.
"""

from __future__ import annotations

import contextlib
import ctypes
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from turnout.runtimes import models
from turnout.runtimes.base import Draft, Drafter
from turnout.runtimes.costcurve import CPU_DEFAULT, CostCurve, load_or_calibrate
from turnout.runtimes.drafters import DraftModelDrafter, NoDrafter, SuffixDrafter
from turnout.runtimes.errors import RuntimeFailure, UsageError

# llama-cpp-python's own sampling defaults, so temperature > 0 samples the same distribution
# as its create_completion does.
# Evaluating k tokens in one batch and one at a time round differently: on this CPU the logits
# of the same position differ by up to 0.3-0.7 (largest over the vocabulary) between a batch of
# one and of two or more rows, with llama.cpp's weight repacking on or off. A greedy choice
# whose top two logits are closer than this is therefore made from a one-row evaluation, as
# plain decoding makes it. It cannot undo the rounding already in the cache (keys and values of
# accepted drafts were computed in a batch), so a near tie later on can still flip: greedy
# output equals plain decoding except, rarely, at a near tie.
# That cache rounding is not small either. Measured (stop 10, session workload, call 4): at a
# position where plain decoding's top two logits were 0.0955 apart, the one-row evaluation on a
# cache holding accepted drafts chose the other token, 0.26 ahead. Re-evaluating this call's
# batch-evaluated positions one row at a time whenever a one-row choice came within 0.1 (tried,
# removed) re-evaluated 131 of the session's 408 output tokens, took it from 1.3x to 0.97x, and
# still missed that flip; a margin wide enough to catch it would cost more than speculation
# gains on this CPU. Bit-exact greedy output needs kernels that round alike at every batch width.
NEAR_TIE_GAP = 0.2

TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05


@dataclass
class Generation:
    """What one `generate` call produced, and how it went."""

    tokens: list[int]
    finish_reason: str  # "stop" (end-of-generation token) or "length"
    prompt_tokens: int
    cached_prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float
    drafted: int = 0
    accepted: int = 0
    draft_steps: int = 0
    near_ties: int = 0  # batch rows re-evaluated alone because their top two logits were close
    verify_rows: list[int] = field(default_factory=list)  # batch widths used, for diagnostics


def best_draft_length(draft: Draft, curve: CostCurve, drafter_cost: float, limit: int) -> int:
    """How many of the draft's tokens are worth verifying on this machine.

    Verifying k drafted tokens costs a batch of k+1 rows (plus k drafting steps for a model
    drafter) and yields, in expectation, 1 + sum over i of the chance that the first i drafted
    tokens are all accepted. Pick the k with the best tokens-per-cost; 0 when nothing beats plain
    decoding.
    """
    best_k, best_rate = 0, 1.0  # plain decoding: one token per unit of cost
    expected, survive = 1.0, 1.0
    for k in range(1, min(len(draft.tokens), limit) + 1):
        survive *= draft.confidence[k - 1]
        expected += survive
        cost = curve.cost(k + 1) + drafter_cost * k
        rate = expected / cost
        if rate > best_rate * 1.02:  # demand a small margin: the estimate is only an estimate
            best_k, best_rate = k, rate
    return best_k


class SpeculativeDecoder:
    """Generates with a draft/verify loop on one llama.cpp context, reusing its KV prefix."""

    def __init__(self, llm: Any, curve: CostCurve, *, max_draft: int = 32) -> None:
        # `llm` is a llama_cpp.Llama: it owns the model, the context and the tokenizer; this
        # class drives its context directly through the C API.
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self._ctx = llm.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self._n_batch = int(llm.n_batch)
        self.curve = curve
        self.max_draft = max(0, min(max_draft, self._n_batch - 1))
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._kv: list[int] = []  # tokens whose keys and values are in the cache, in order
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None

    def __del__(self) -> None:
        # At interpreter shutdown the library's module globals may already be gone.
        with contextlib.suppress(AttributeError, TypeError):
            self.close()

    # --- the KV cache ------------------------------------------------------------------

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values are in the cache now (a copy)."""
        return list(self._kv)

    def kv_positions(self) -> int:
        """How many positions llama.cpp holds for sequence 0 (to check rollbacks against)."""
        return int(self._lib.llama_memory_seq_pos_max(self._mem, 0)) + 1

    def _truncate(self, n: int) -> None:
        if n < len(self._kv):
            if not self._lib.llama_memory_seq_rm(self._mem, 0, n, -1):
                # A partial removal can fail on recurrent models: start over from nothing.
                self._lib.llama_memory_clear(self._mem, True)
                n = 0
            del self._kv[n:]

    def forget(self) -> None:
        """Empty the cache, so the next call starts from nothing (benchmarks compare modes
        from the same state: how a prefix was batched changes its keys in the last bits)."""
        self._lib.llama_memory_clear(self._mem, True)
        self._kv.clear()

    def _claim_context(self) -> None:
        # llama-cpp-python's high-level calls on the same Llama track their own view of the
        # cache. If one ran since our last call (its n_tokens is not 0), our view is stale.
        if self._llm.n_tokens != 0:
            self._lib.llama_memory_clear(self._mem, True)
            self._kv.clear()
        self._llm.n_tokens = 0  # and make the library re-evaluate from scratch after us

    def _decode(self, tokens: Sequence[int], logit_rows: str) -> None:
        """Evaluate tokens at the end of the cache; logits on all rows or only the last."""
        batch = self._batch
        n = len(tokens)
        base = len(self._kv)
        batch.n_tokens = n
        for i, tok in enumerate(tokens):
            batch.token[i] = tok
            batch.pos[i] = base + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = logit_rows == "all"
        batch.logits[n - 1] = True
        rc = self._lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise RuntimeFailure(
                f"llama_decode returned {rc} at position {base} with {n} tokens; the context "
                f"({self._n_ctx} tokens) may be full: raise n_ctx or shorten the prompt"
            )
        self._kv.extend(tokens)

    def append(
        self, tokens: Sequence[int], after_batch: Callable[[int], None] | None = None
    ) -> None:
        """Evaluate tokens after the cached ones, keeping only the last row's logits.
        `after_batch(done)` hears how many of `tokens` are evaluated after each batch."""
        for start in range(0, len(tokens), self._n_batch):
            self._decode(tokens[start : start + self._n_batch], "last")
            if after_batch is not None:
                after_batch(min(start + self._n_batch, len(tokens)))

    def prefill(
        self, prompt: Sequence[int], on_progress: Callable[[int, int, int], None] | None = None
    ) -> int:
        """Bring the cache to `prompt`, reusing the common prefix; returns tokens reused.

        Leaves the logits of the prompt's last token in row 0 ... n-1 of the last batch; the
        caller samples from the last row. `on_progress(done, new, reused)` is called before the
        first batch and after each, `new` being the tokens this call evaluates (a cold prompt of
        a few thousand tokens takes minutes on a CPU).
        """
        common = 0
        for a, b in zip(self._kv, prompt):
            if a != b:
                break
            common += 1
        if common == len(prompt):
            common -= 1  # re-evaluate the last prompt token: its logits are needed
        self._truncate(common)
        common = len(self._kv)
        fresh = list(prompt[common:])
        after_batch = None
        if on_progress is not None:
            on_progress(0, len(fresh), common)
            after_batch = lambda done: on_progress(done, len(fresh), common)
        self.append(fresh, after_batch)
        return common

    # --- generation ------------------------------------------------------------------

    def generate(
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int,
        drafter: Drafter | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        grammar: Any = None,
        on_token: Callable[[int], bool] | None = None,
        on_prefill: Callable[[int, int, int], None] | None = None,
    ) -> Generation:
        """Generate up to `max_tokens` tokens after `prompt`.

        `grammar` is an optional `llama_cpp.LlamaGrammar` (or GBNF text) that constrains every
        chosen token. `on_token` may return True to stop early (e.g. a stop string was seen).
        `on_prefill` follows the prompt's evaluation (see `prefill`).
        """
        if not prompt:
            raise UsageError("cannot generate from an empty prompt: pass at least one token")
        if len(prompt) >= self._n_ctx:
            raise UsageError(
                f"the prompt has {len(prompt)} tokens but the context holds {self._n_ctx}: "
                f"raise n_ctx or shorten the prompt"
            )
        drafter = drafter or NoDrafter()
        max_tokens = min(max_tokens, self._n_ctx - len(prompt))
        self._claim_context()
        sampler = self._make_sampler(temperature, seed, grammar)
        try:
            return self._run(
                prompt, max_tokens, drafter, sampler, on_token, temperature <= 0, on_prefill
            )
        finally:
            self._lib.llama_sampler_free(sampler)

    def _run(
        self,
        prompt: Sequence[int],
        max_tokens: int,
        drafter: Drafter,
        sampler: Any,
        on_token: Callable[[int], bool] | None,
        greedy: bool,
        on_prefill: Callable[[int, int, int], None] | None = None,
    ) -> Generation:
        lib = self._lib
        started = time.perf_counter()
        reused = self.prefill(prompt, on_prefill)
        drafter.begin(prompt)
        pending = lib.llama_sampler_sample(sampler, self._ctx, -1)
        prefill_done = time.perf_counter()
        out = Generation(
            tokens=[], finish_reason="length", prompt_tokens=len(prompt),
            cached_prompt_tokens=reused, prefill_seconds=prefill_done - started,
            decode_seconds=0.0,
        )
        context = list(prompt)
        done: str | None = None
        redo = False  # re-evaluate `pending` on its own: a batch row was a near tie
        while done is None:
            # `pending` is the target's latest choice, not yet in the cache.
            if not redo:
                done = self._emit(pending, out, context, max_tokens, on_token)
                if done is not None:
                    break
            room = min(
                self.max_draft,
                max_tokens - len(out.tokens),
                self._n_ctx - len(self._kv) - 2,
            )
            draft_tokens: list[int] = []
            if room > 0 and not redo:
                draft = drafter.propose(context, room)
                k = best_draft_length(draft, self.curve, drafter.cost_per_token, room)
                draft_tokens = list(draft.tokens[:k])
            redo = False
            batch = [pending, *draft_tokens]
            base = len(self._kv)
            self._decode(batch, "all" if draft_tokens else "last")
            out.verify_rows.append(len(batch))
            # Row i holds the target's view of the token after batch[i]. While its choice
            # equals the drafted token, the next row was computed on the right context.
            accepted = 0
            for i in range(len(batch)):
                if draft_tokens and greedy and self._near_tie(i):
                    # A batch of rows rounds differently from one row (see NEAR_TIE_GAP):
                    # decide this position the way plain decoding does, on its own.
                    redo = True
                    out.near_ties += 1
                    break
                pending = lib.llama_sampler_sample(sampler, self._ctx, i)
                if i == len(draft_tokens) or pending != draft_tokens[i]:
                    break
                accepted += 1
                done = self._emit(pending, out, context, max_tokens, on_token)
                if done is not None:
                    break
            if draft_tokens:
                out.drafted += len(draft_tokens)
                out.accepted += accepted
                out.draft_steps += 1
                drafter.feedback(len(draft_tokens), accepted)
            if redo:
                # batch[accepted] is already taken (the last accepted draft, or the pending
                # token itself); drop its row and evaluate it alone next.
                pending = batch[accepted]
                self._truncate(base + accepted)
            else:
                # Keep the evaluated token and the accepted drafts; roll the rest back.
                self._truncate(base + 1 + accepted)
        out.finish_reason = done
        out.decode_seconds = time.perf_counter() - prefill_done
        drafter.finish(context)
        return out

    def _near_tie(self, row: int) -> bool:
        """Whether the top two logits of batch row `row` are within NEAR_TIE_GAP."""
        ptr = self._lib.llama_get_logits_ith(self._ctx, row)
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        top2 = np.partition(logits, self._n_vocab - 2)[-2:]
        return bool(abs(float(top2[1]) - float(top2[0])) < NEAR_TIE_GAP)

    def _emit(
        self,
        token: int,
        out: Generation,
        context: list[int],
        max_tokens: int,
        on_token: Callable[[int], bool] | None,
    ) -> str | None:
        """Take the target's choice into the output; say why generation ends, if it does."""
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            context.append(token)
            return "stop"
        out.tokens.append(token)
        context.append(token)
        if on_token is not None and on_token(token):
            return "stop"
        if len(out.tokens) >= max_tokens:
            return "length"
        return None

    def _make_sampler(self, temperature: float, seed: int, grammar: Any) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if grammar is not None:
            text = grammar if isinstance(grammar, str) else grammar._grammar
            root = "root" if isinstance(grammar, str) else grammar._root
            constraint = lib.llama_sampler_init_grammar(
                self._vocab, text.encode("utf-8"), root.encode("utf-8")
            )
            if not constraint:
                lib.llama_sampler_free(chain)
                raise UsageError("llama.cpp could not parse the grammar: check its GBNF text")
            lib.llama_sampler_chain_add(chain, constraint)
        if temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        else:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(TOP_K))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(TOP_P, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(MIN_P, 1))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    # --- helpers for calibration and diagnostics ---------------------------------------

    def time_batch(self, prefix: Sequence[int], width: int, token: int) -> float:
        """Seconds to evaluate `width` tokens after `prefix` with logits on every row."""
        self._claim_context()
        self.prefill(prefix)
        base = len(self._kv)
        started = time.perf_counter()
        self._decode([token] * width, "all")
        elapsed = time.perf_counter() - started
        self._truncate(base)
        return elapsed

    def next_logits(self, tokens: Sequence[int]) -> list[float]:
        """The target's logits for the token after `tokens` (evaluated one batch at a time)."""
        self._claim_context()
        self.prefill(tokens)
        n_vocab = self._lib.llama_vocab_n_tokens(self._vocab)
        ptr = self._lib.llama_get_logits_ith(self._ctx, -1)
        return list(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float * n_vocab)).contents)


def peak_rss_reset() -> None:
    """Start a new peak-memory window for this process (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb() -> float:
    """The process's peak resident memory since the last reset, in MiB (0.0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class LocalSpeculation:
    """The local runtime's generation path: chat template, drafters, cost curve, decoder.

    One per loaded model. The suffix drafter's memory lives as long as this object, so every
    call of a session (an agent run) drafts from everything the session has seen.
    """

    def __init__(
        self,
        llm: Any,
        *,
        model_path: Any,
        n_threads: int,
        n_gpu_layers: int,
        draft_model: str,
        calibrate: bool,
        max_draft: int = 32,
    ) -> None:
        from llama_cpp import llama_chat_format

        self._llm = llm
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.draft_model = draft_model
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise UsageError(
                f"{model_path} has no chat template in its metadata; use drafter='off' to let "
                f"llama-cpp-python pick a chat format"
            )
        eos, bos = llm.token_eos(), llm.token_bos()
        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        )
        self.decoder = SpeculativeDecoder(llm, CPU_DEFAULT, max_draft=max_draft)
        if calibrate:
            probe = llm.tokenize(b"def f(x):\n    return x\n" * 8, add_bos=False)[:64]
            self.decoder.curve = load_or_calibrate(
                models.models_dir(), model_path, n_threads, n_gpu_layers,
                lambda width: self.decoder.time_batch(probe, width, probe[-1]),
            )
        self.suffix = SuffixDrafter()
        self._draft_model_drafter: Drafter | None = None

    def drafter(self, name: str) -> Drafter:
        if name == "suffix":
            return self.suffix
        if name == "none":
            return NoDrafter()
        if name == "draft-model":
            if self._draft_model_drafter is None:
                self._draft_model_drafter = self._load_draft_model()
            return self._draft_model_drafter
        raise UsageError(f"unknown drafter {name!r}: use 'suffix', 'draft-model', 'none' or 'off'")

    def _load_draft_model(self) -> Drafter:
        import llama_cpp

        path = models.resolve(self.draft_model)
        llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=self._llm.n_ctx(), n_threads=self.n_threads,
            n_threads_batch=self.n_threads, n_gpu_layers=self.n_gpu_layers, verbose=False,
        )
        drafter = DraftModelDrafter(llm)
        # What one drafted token costs against one target step, measured here, not assumed.
        probe = llama_cpp.Llama.tokenize(llm, b"x = 1\n" * 16, add_bos=False)[:32]
        draft_s = statistics.median(
            drafter._decoder.time_batch(probe, 1, probe[-1]) for _ in range(5)
        )
        target_s = statistics.median(
            self.decoder.time_batch(probe, 1, probe[-1]) for _ in range(5)
        )
        drafter.cost_per_token = draft_s / target_s if target_s > 0 else 0.5
        return drafter

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        rendered = self._formatter(messages=messages)  # type: ignore[arg-type]
        return list(self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=False, special=True))

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        drafter: str,
        grammar: Any = None,
        on_token: Callable[[int], bool] | None = None,
        on_prefill: Callable[[int, int, int], None] | None = None,
    ) -> tuple[str, Generation, float]:
        """The reply's text, how it was generated, and the peak memory (MiB) during the call."""
        prompt = self.prompt_tokens(messages)
        peak_rss_reset()
        generation = self.decoder.generate(
            prompt, max_tokens=max_tokens, drafter=self.drafter(drafter),
            temperature=temperature, seed=seed, grammar=grammar, on_token=on_token,
            on_prefill=on_prefill,
        )
        text = self._llm.detokenize(generation.tokens, prev_tokens=prompt).decode(
            "utf-8", errors="ignore"
        )
        return text, generation, peak_rss_mb()

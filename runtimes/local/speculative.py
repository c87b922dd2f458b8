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

`generate_many` samples n completions of one prompt as parallel sequences: the prompt is read
once into sequence 0 (from the prefix cache as usual), shared with sequences 1..n-1 through
`llama_memory_seq_cp` (in a unified KV cache that only tags the prompt's cells with more
sequence ids), and every step decodes one token per live sequence in a single batch. A batch of
4 rows costs less than 4 lone rows (2.1x in the CPU cost curve, about 3x in `turnout bench
sampling` for Qwen2.5-Coder-1.5B on 2 cores: docs/measurements.md#batch-cost-on-the-cpu), so 4
completions cost less than 4 calls.
Sequences 1..n-1 are removed from the cache afterwards; sequence 0 stays as the prefix cache.
The context must allow several sequences (`n_seq_max` > 1, unified KV cache: see
`llama_with_sequences`); one that does not gets its completions one after another. Each
completion samples its seed's distribution; it is its seed's lone reply bit for bit only with
flash attention (see `generate_many` for why).

Also here: `DraftModelDrafter`, the drafter that is a small model decoding with a
`SpeculativeDecoder` of its own (the model-free drafters and the `Drafter` protocol are in
`drafters.py`), and `LocalSpeculation`, the local runtime's generation path (chat template,
drafters, cost curve, decoder).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from turnout.runtimes.errors import RuntimeFailure, UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.costcurve import (
    CPU_DEFAULT,
    CostCurve,
    cache_path,
    corrected,
    load_or_calibrate,
    save,
)
from turnout.runtimes.local.drafters import Draft, Drafter, NoDrafter, SuffixDrafter
from turnout.runtimes.local.prefixcache import PrefixStore

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
    disk_prompt_tokens: int = 0  # of the cached ones, those whose state was read from disk
    drafted: int = 0
    accepted: int = 0
    draft_steps: int = 0
    near_ties: int = 0  # batch rows re-evaluated alone because their top two logits were close
    verify_rows: list[int] = field(default_factory=list)  # batch widths used, for diagnostics
    step_seconds: list[float] = field(default_factory=list)  # each decode step's llama_decode
    # With `diagnostics=True`: for each output position, the TOP_LOGITS highest logits the
    # token was chosen from, as (token ids, logits), highest first (see `top_logits`).
    top: list[tuple[list[int], list[float]]] = field(default_factory=list)


@dataclass
class ParallelGeneration:
    """What one `generate_many` call produced: one `Generation` per completion, seed order.

    The prompt is counted once: `prompt_tokens`/`cached_prompt_tokens`/`prefill_seconds` are
    the call's (each sequence's own copies say the same); `decode_seconds` is the wall time of
    the whole decode, while each sequence's `decode_seconds` runs until that sequence ended.
    """

    sequences: list[Generation]
    prompt_tokens: int
    cached_prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float
    disk_prompt_tokens: int = 0
    batch_rows: list[int] = field(default_factory=list)  # rows of each decode step's batch
    step_seconds: list[float] = field(default_factory=list)  # each decode step's llama_decode

    @property
    def completion_tokens(self) -> int:
        return sum(len(g.tokens) for g in self.sequences)


TOP_LOGITS = 8  # logits kept per position by `diagnostics=True`


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


_DEFAULT_PARAMS_LOCK = threading.Lock()


def llama_with_sequences(n_seq_max: int, **kwargs: Any) -> Any:
    """A `llama_cpp.Llama(**kwargs)` whose context holds up to `n_seq_max` sequences, in one
    unified KV cache, so `SpeculativeDecoder.generate_many` can decode them in parallel.

    llama-cpp-python's `Llama` makes every context (but embedding ones) for one sequence, and
    llama.cpp rejects a batch row whose sequence id is not below the context's `n_seq_max`. A
    larger `n_seq_max` alone would split the cache: each sequence would get n_ctx / n_seq_max
    cells, and a lone long prompt would no longer fit. With `kv_unified` every sequence may use
    any of the n_ctx cells, the prompt that parallel completions share takes its cells once,
    and one sequence alone works as before. `Llama` has no parameter for either, so its
    defaults are adjusted (`llama_context_default_params`, under a lock) while it is made.
    """
    import llama_cpp
    from llama_cpp import llama_cpp as lib

    if n_seq_max <= 1:
        return llama_cpp.Llama(**kwargs)
    original = lib.llama_context_default_params
    wanted = min(n_seq_max, int(lib.llama_max_parallel_sequences()))

    def params() -> Any:
        p = original()
        p.n_seq_max = wanted
        p.kv_unified = True
        return p

    with _DEFAULT_PARAMS_LOCK:
        lib.llama_context_default_params = params
        try:
            return llama_cpp.Llama(**kwargs)
        finally:
            lib.llama_context_default_params = original


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
        self._eog: list[int] | None = None  # end-of-generation tokens, found on first use
        self._diag_seconds = 0.0  # time spent on diagnostics, kept out of decode_seconds
        # Prompt states on disk (None: none kept): a prefill that would evaluate at least
        # `disk_min_tokens` loads the stored state holding that many more, and one that did
        # evaluate that many stores the prompt's state for the next process.
        self.prefixes: PrefixStore | None = None
        self.disk_min_tokens = 128
        self.disk_tokens = 0  # of the latest prefill's reused tokens, those loaded from disk

    @property
    def max_sequences(self) -> int:
        """How many sequences `generate_many` decodes in one batch: the context's `n_seq_max`
        when its KV cache lets every sequence use all n_ctx cells (unified), else 1."""
        lib = self._lib
        n = int(lib.llama_n_seq_max(self._ctx))
        if n <= 1 or int(lib.llama_n_ctx_seq(self._ctx)) < self._n_ctx:
            return 1
        return min(n, self._n_batch)

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
        self.disk_tokens = 0
        if self.prefixes is not None and len(prompt) - common >= self.disk_min_tokens:
            common = self._load_prefix(prompt, common)
        if common == len(prompt):
            common -= 1  # re-evaluate the last prompt token: its logits are needed
        self._truncate(common)
        common = len(self._kv)
        self.disk_tokens = min(self.disk_tokens, common)
        fresh = list(prompt[common:])
        after_batch = None
        if on_progress is not None:
            on_progress(0, len(fresh), common)
            after_batch = lambda done: on_progress(done, len(fresh), common)
        self.append(fresh, after_batch)
        if self.prefixes is not None and len(fresh) >= self.disk_min_tokens:
            self._save_prefix()
        return common

    def _load_prefix(self, prompt: Sequence[int], common: int) -> int:
        """Replace the cache by the stored state holding the most of `prompt` where it holds
        `disk_min_tokens` more than the cache does; returns the tokens of `prompt` now cached."""
        assert self.prefixes is not None
        stored = self.prefixes.best(list(prompt))
        if stored is None or stored.common < common + self.disk_min_tokens:
            return common
        payload = self.prefixes.read(stored)
        if payload is None:
            return common
        self._lib.llama_memory_clear(self._mem, True)
        self._kv.clear()
        buffer = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
        loaded = self._lib.llama_state_seq_set_data(self._ctx, buffer, len(payload), 0)
        if not loaded or self.kv_positions() != len(stored.tokens):
            # llama.cpp refused it (a shape its header did not tell apart): read from nothing.
            self._lib.llama_memory_clear(self._mem, True)
            self.prefixes.discard(stored.path)
            return 0
        self._kv = list(stored.tokens)
        self._truncate(stored.common)
        self.disk_tokens = len(self._kv)
        return len(self._kv)

    def _save_prefix(self) -> None:
        """Store the cache's state (the prompt just evaluated). A store that fails (a full
        disk) costs the next process its warm start, never this call."""
        assert self.prefixes is not None
        size = int(self._lib.llama_state_seq_get_size(self._ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(self._lib.llama_state_seq_get_data(self._ctx, buffer, size, 0))
        if written:
            with contextlib.suppress(OSError):
                self.prefixes.write(list(self._kv), ctypes.string_at(buffer, written))

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
        ignore_eos: bool = False,
        diagnostics: bool = False,
    ) -> Generation:
        """Generate up to `max_tokens` tokens after `prompt`.

        `grammar` is an optional `llama_cpp.LlamaGrammar` (or GBNF text) that constrains every
        chosen token. `on_token` may return True to stop early (e.g. a stop string was seen).
        `on_prefill` follows the prompt's evaluation (see `prefill`). `ignore_eos` forbids the
        end-of-generation tokens (benchmarks that need `max_tokens` tokens); `diagnostics`
        keeps the top logits of every position in `Generation.top`.
        """
        self._check_prompt(prompt)
        drafter = drafter or NoDrafter()
        max_tokens = min(max_tokens, self._n_ctx - len(prompt))
        self._claim_context()
        sampler = self._make_sampler(temperature, seed, grammar, ignore_eos)
        try:
            return self._run(
                prompt, max_tokens, drafter, sampler, on_token, temperature <= 0, on_prefill, diagnostics,
            )
        finally:
            self._lib.llama_sampler_free(sampler)

    def _check_prompt(self, prompt: Sequence[int]) -> None:
        if not prompt:
            raise UsageError("cannot generate from an empty prompt: pass at least one token")
        if len(prompt) >= self._n_ctx:
            raise UsageError(
                f"the prompt has {len(prompt)} tokens but the context holds {self._n_ctx}: "
                f"raise n_ctx or shorten the prompt"
            )

    def generate_many(
        self,
        prompt: Sequence[int],
        *,
        n: int,
        max_tokens: int,
        temperature: float,
        seed: int = 0,
        grammar: Any = None,
        on_token: Sequence[Callable[[int], bool] | None] | None = None,
        on_prefill: Callable[[int, int, int], None] | None = None,
        ignore_eos: bool = False,
        diagnostics: bool = False,
    ) -> ParallelGeneration:
        """Sample `n` completions of `prompt`, completion i from seed `seed + i`.

        Completion i samples what `generate(prompt, seed=seed + i, ...)` samples from the same
        cache state (no drafts), with the same sampler chain and random stream. Whether it is
        bit for bit the same reply depends on the attention kernel. With flash attention it is
        (measured: every logit equal): each row attends only to its own sequence's cells, in
        position order, skipping the others'. Without it (llama.cpp's default) the product of
        attention weights and values runs over every cell in the window, the other sequences'
        ones weighted by an exact 0, but which SIMD lane sums which cell depends on where the
        cells sit, and the sequences' cells interleave: the sums round differently, q8
        quantization of the activations turns that into logit changes of ~0.1-0.35 after a few
        tokens, and at temperature > 0 a draw near the boundary of two tokens then picks the
        other one. The sequence stays a sample of the same distribution; it is no longer the
        same sample as alone. Up to
        `max_sequences` completions are decoded together as parallel sequences (see the module
        docstring); more are done in groups, one after another. Each sequence ends on its own
        (end of generation, `max_tokens`, or its `on_token[i]` returning True). In a group,
        the n sequences share the n_ctx cells: `max_tokens` is capped at what fits for all.
        With temperature 0 every completion is the same greedy one; callers ask for one.
        """
        self._check_prompt(prompt)
        if n < 1:
            raise UsageError(f"n must be at least 1, got {n}")
        callbacks = list(on_token) if on_token is not None else [None] * n
        if len(callbacks) != n:
            raise UsageError(f"on_token has {len(callbacks)} callbacks for {n} completions")
        width = self.max_sequences
        total: ParallelGeneration | None = None
        for start in range(0, n, width):
            k = min(width, n - start)
            progress = on_prefill if start == 0 else None
            if k == 1:
                g = self.generate(
                    prompt, max_tokens=max_tokens, temperature=temperature, seed=seed + start,
                    grammar=grammar, on_token=callbacks[start], on_prefill=progress,
                    ignore_eos=ignore_eos, diagnostics=diagnostics,
                )
                part = ParallelGeneration(
                    sequences=[g], prompt_tokens=g.prompt_tokens,
                    cached_prompt_tokens=g.cached_prompt_tokens,
                    prefill_seconds=g.prefill_seconds, decode_seconds=g.decode_seconds,
                    batch_rows=list(g.verify_rows), step_seconds=list(g.step_seconds),
                )
            else:
                part = self._run_parallel(
                    prompt, k, max_tokens, temperature, seed + start, grammar,
                    callbacks[start : start + k], progress, ignore_eos, diagnostics,
                )
            if total is None:
                total = part
            else:
                total.sequences.extend(part.sequences)
                total.prefill_seconds += part.prefill_seconds
                total.decode_seconds += part.decode_seconds
                total.batch_rows.extend(part.batch_rows)
                total.step_seconds.extend(part.step_seconds)
        assert total is not None
        return total

    def _run_parallel(
        self,
        prompt: Sequence[int],
        k: int,
        max_tokens: int,
        temperature: float,
        seed: int,
        grammar: Any,
        on_token: Sequence[Callable[[int], bool] | None],
        on_prefill: Callable[[int, int, int], None] | None,
        ignore_eos: bool,
        diagnostics: bool,
    ) -> ParallelGeneration:
        """k sequences in parallel: prompt in sequence 0, copied to 1..k-1, one batch a step."""
        lib = self._lib
        # The prompt's cells are shared; each sequence's output takes cells of its own.
        max_tokens = min(max_tokens, (self._n_ctx - len(prompt)) // k)
        if max_tokens < 1:
            raise UsageError(
                f"{k} completions of a {len(prompt)}-token prompt do not fit in the context "
                f"({self._n_ctx} tokens): raise n_ctx, shorten the prompt or ask for fewer"
            )
        self._claim_context()
        self._diag_seconds = 0.0
        samplers: list[Any] = []
        try:
            for i in range(k):
                samplers.append(self._make_sampler(temperature, seed + i, grammar, ignore_eos))
            started = time.perf_counter()
            reused = self.prefill(prompt, on_prefill)
            base = len(self._kv)  # == len(prompt): sequence 0 holds exactly the prompt
            for i in range(1, k):
                lib.llama_memory_seq_cp(self._mem, 0, i, -1, -1)
            outs = [
                Generation(
                    tokens=[], finish_reason="length", prompt_tokens=len(prompt),
                    cached_prompt_tokens=reused, prefill_seconds=0.0, decode_seconds=0.0,
                    disk_prompt_tokens=self.disk_tokens,
                )
                for _ in range(k)
            ]
            # Every sequence's first token comes from the prompt's last row, as alone.
            pending = [self._sample(samplers[i], -1, outs[i], diagnostics) for i in range(k)]
            prefill_done = time.perf_counter()
            for g in outs:
                g.prefill_seconds = prefill_done - started
            contexts = [list(prompt) for _ in range(k)]
            live = list(range(k))
            batch_rows: list[int] = []
            step_seconds: list[float] = []
            step = 0
            while True:
                still = []
                for i in live:
                    why = self._emit(pending[i], outs[i], contexts[i], max_tokens, on_token[i])
                    if why is None:
                        still.append(i)
                    else:
                        outs[i].finish_reason = why
                        outs[i].decode_seconds = (
                            time.perf_counter() - prefill_done - self._diag_seconds
                        )
                live = still
                if not live:
                    break
                began = time.perf_counter()
                self._decode_rows([(pending[i], base + step, i) for i in live])
                step_seconds.append(time.perf_counter() - began)
                if live[0] == 0:
                    self._kv.append(pending[0])
                batch_rows.append(len(live))
                for row, i in enumerate(live):
                    pending[i] = self._sample(samplers[i], row, outs[i], diagnostics)
                    outs[i].verify_rows.append(len(live))
                step += 1
            decode_seconds = time.perf_counter() - prefill_done - self._diag_seconds
        finally:
            # Only sequence 0 stays: the next call's prefix cache.
            for i in range(1, k):
                lib.llama_memory_seq_rm(self._mem, i, -1, -1)
            for sampler in samplers:
                lib.llama_sampler_free(sampler)
        return ParallelGeneration(
            sequences=outs, prompt_tokens=len(prompt), cached_prompt_tokens=reused,
            disk_prompt_tokens=self.disk_tokens, prefill_seconds=prefill_done - started, decode_seconds=decode_seconds,
            batch_rows=batch_rows, step_seconds=step_seconds,
        )

    def _decode_rows(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """Evaluate one batch of (token, position, sequence) rows, logits on every row."""
        batch = self._batch
        batch.n_tokens = len(rows)
        for j, (tok, pos, seq) in enumerate(rows):
            batch.token[j] = tok
            batch.pos[j] = pos
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = seq
            batch.logits[j] = True
        rc = self._lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise RuntimeFailure(
                f"llama_decode returned {rc} for {len(rows)} parallel sequences at position "
                f"{rows[0][1]}; the context ({self._n_ctx} tokens) may be full: raise n_ctx"
            )

    def _sample(self, sampler: Any, row: int, out: Generation, diagnostics: bool) -> int:
        """The sampler's choice from batch row `row`; its top logits too, with diagnostics."""
        if diagnostics:
            began = time.perf_counter()
            out.top.append(self.top_logits(row))
            self._diag_seconds += time.perf_counter() - began
        return int(self._lib.llama_sampler_sample(sampler, self._ctx, row))

    def _logits(self, row: int) -> Any:
        """Batch row `row`'s logits (-1: the last), a view of llama.cpp's buffer."""
        ptr = self._lib.llama_get_logits_ith(self._ctx, row)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _weights(self, row: int) -> Any:
        """Batch row `row`'s softmax, unnormalized (divide by its sum for probabilities)."""
        logits = self._logits(row).astype(np.float64)
        return np.exp(logits - logits.max())

    def top_logits(self, row: int, k: int = TOP_LOGITS) -> tuple[list[int], list[float]]:
        """The `k` highest logits of batch row `row` (-1: the last), highest first."""
        logits = self._logits(row)
        ids = np.argpartition(logits, self._n_vocab - k)[-k:]
        ids = ids[np.argsort(-logits[ids], kind="stable")]
        return [int(t) for t in ids], [float(logits[t]) for t in ids]

    def _run(
        self,
        prompt: Sequence[int],
        max_tokens: int,
        drafter: Drafter,
        sampler: Any,
        on_token: Callable[[int], bool] | None,
        greedy: bool,
        on_prefill: Callable[[int, int, int], None] | None = None,
        diagnostics: bool = False,
    ) -> Generation:
        started = time.perf_counter()
        self._diag_seconds = 0.0
        reused = self.prefill(prompt, on_prefill)
        drafter.begin(prompt)
        out = Generation(
            tokens=[], finish_reason="length", prompt_tokens=len(prompt),
            cached_prompt_tokens=reused, prefill_seconds=0.0, decode_seconds=0.0,
            disk_prompt_tokens=self.disk_tokens,
        )
        pending = self._sample(sampler, -1, out, diagnostics)
        prefill_done = time.perf_counter()
        out.prefill_seconds = prefill_done - started
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
            began = time.perf_counter()
            self._decode(batch, "all" if draft_tokens else "last")
            out.step_seconds.append(time.perf_counter() - began)
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
                pending = self._sample(sampler, i, out, diagnostics)
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
        out.decode_seconds = time.perf_counter() - prefill_done - self._diag_seconds
        drafter.finish(context)
        return out

    def aside_answer_probability(self, prompt: Sequence[int], yes: Sequence[int], no: Sequence[int]) -> float | None:
        """As `answer_probability`, for a prompt evaluated in a sequence of its own beside the
        cache (sequence 1, dropped after): the conversation in sequence 0 stays, so the next
        reply reuses it. None when the context has no second sequence or no room left for it."""
        if self.max_sequences < 2 or len(prompt) + len(self._kv) > self._n_ctx:
            return None
        self._check_prompt(prompt)
        self._claim_context()
        batch = self._batch
        try:
            for start in range(0, len(prompt), self._n_batch):
                chunk = prompt[start : start + self._n_batch]
                batch.n_tokens = len(chunk)
                for i, tok in enumerate(chunk):
                    batch.token[i] = tok
                    batch.pos[i] = start + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 1
                    batch.logits[i] = i == len(chunk) - 1
                if self._lib.llama_decode(self._ctx, batch) != 0:
                    return None  # no room in the cache for it: the call goes unchecked
            weights = self._weights(-1)
        finally:
            self._lib.llama_memory_seq_rm(self._mem, 1, -1, -1)
        said_yes, said_no = float(weights[list(yes)].sum()), float(weights[list(no)].sum())
        return said_yes / (said_yes + said_no) if said_yes + said_no > 0 else 0.5

    def answer_probability(self, prompt: Sequence[int], yes: Sequence[int], no: Sequence[int]) -> float:
        """After `prompt`, the model's probability of answering with one of the `yes` tokens
        rather than one of the `no` tokens (the prompt stays in the cache, so a generation
        from a prompt that shares its start reads only the rest)."""
        self._check_prompt(prompt)
        self._claim_context()
        self.prefill(prompt)
        weights = self._weights(-1)
        said_yes, said_no = float(weights[list(yes)].sum()), float(weights[list(no)].sum())
        return said_yes / (said_yes + said_no) if said_yes + said_no > 0 else 0.5

    def _near_tie(self, row: int) -> bool:
        """Whether the top two logits of batch row `row` are within NEAR_TIE_GAP."""
        logits = self._logits(row)
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

    def eog_tokens(self) -> list[int]:
        """Every end-of-generation token of the vocabulary."""
        if self._eog is None:
            is_eog = self._lib.llama_vocab_is_eog
            self._eog = [t for t in range(self._n_vocab) if is_eog(self._vocab, t)]
        return self._eog

    def _make_sampler(
        self, temperature: float, seed: int, grammar: Any, ignore_eos: bool = False
    ) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if ignore_eos:
            eog = self.eog_tokens()
            biases = (lib.llama_logit_bias * len(eog))()
            for j, token in enumerate(eog):
                biases[j].token = token
                biases[j].bias = -math.inf
            lib.llama_sampler_chain_add(
                chain, lib.llama_sampler_init_logit_bias(self._n_vocab, len(eog), biases)
            )
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


class DraftModelDrafter:
    """A small model with the target's tokenizer drafts greedily on its own KV cache, which it
    keeps in step with the target's context (Qwen2.5-Coder-0.5B for the 1.5B). That cache is run
    by a `SpeculativeDecoder` of its own, which is why this drafter lives here."""

    name = "draft-model"

    def __init__(
        self, llm: Any, *, cost_per_token: float = 0.5, max_draft: int = 8,
        min_confidence: float = 0.4,
    ) -> None:
        # `llm` is a llama_cpp.Llama for the draft model, driven by a decoder of its own.
        import llama_cpp

        self._lib = llama_cpp
        self.llm = llm
        self.cost_per_token = cost_per_token
        self.max_draft = max_draft
        self.min_confidence = min_confidence
        self._decoder = SpeculativeDecoder(llm, CPU_DEFAULT)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llm.model))

    def begin(self, prompt_tokens: Sequence[int]) -> None:
        pass  # the cache catches up on the first proposal, reusing what it shares

    def propose(self, context: Sequence[int], max_tokens: int) -> Draft:
        self._decoder.prefill(context)  # keeps the shared prefix, evaluates the new tokens
        draft: list[int] = []
        confidence: list[float] = []
        survive = 1.0
        for i in range(min(max_tokens, self.max_draft)):
            ptr = self._lib.llama_get_logits_ith(self.llm.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
            token = int(np.argmax(logits))
            top = float(logits[token])
            p = 1.0 / float(np.sum(np.exp(logits - top)))
            survive *= p
            if p < self.min_confidence or survive < 0.2:
                break
            draft.append(token)
            confidence.append(p)
            if i + 1 < min(max_tokens, self.max_draft):
                self._decoder.append([token])
        return Draft(tokens=draft, confidence=confidence)

    def feedback(self, drafted: int, accepted: int) -> None:
        pass

    def finish(self, context: Sequence[int]) -> None:
        pass


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
        self._model_path = Path(model_path)
        # Measured on the first call that drafts (a run whose calls draft nothing never pays for
        # it), then corrected from every drafting call's own timings.
        self._calibrate = calibrate
        self._curve_path: Path | None = None
        self._yes_no: tuple[list[int], list[int]] | None = None  # first tokens of Yes and No
        self.suffix = SuffixDrafter()
        self._draft_model_drafter: Drafter | None = None

    def _curve_for_drafting(self) -> None:
        """Load or measure this model's cost curve, once, before the first call that drafts."""
        if not self._calibrate or self._curve_path is not None:
            return
        probe = self._llm.tokenize(b"def f(x):\n    return x\n" * 8, add_bos=False)[:64]
        self.decoder.curve = load_or_calibrate(
            models.models_dir(), self._model_path, self.n_threads, self.n_gpu_layers,
            lambda width: self.decoder.time_batch(probe, width, probe[-1]),
        )
        self._curve_path = cache_path(models.models_dir(), self._model_path, self.decoder.curve.key)

    def yes_probability(self, question: str) -> float | None:
        """The model's probability of Yes over No in answer to `question` asked on its own (a
        conversation of one user message), evaluated beside the cached conversation, which
        it leaves in place; None where the context cannot hold it beside (see
        `SpeculativeDecoder.aside_answer_probability`)."""
        prompt = self.prompt_tokens([{"role": "user", "content": question}])
        if self._yes_no is None:
            first = lambda word: {self._llm.tokenize(w.encode(), add_bos=False)[0]
                                  for w in (word, word.lower(), f" {word}", f" {word.lower()}")}
            self._yes_no = (sorted(first("Yes")), sorted(first("No")))
        return self.decoder.aside_answer_probability(prompt, *self._yes_no)

    def measured_curve(self) -> CostCurve:
        """This machine's cost curve for the model, measured now if it has not been."""
        self._curve_for_drafting()
        return self.decoder.curve

    def _learn(self, generation: Generation) -> None:
        """Move the curve toward what this call's verify batches cost, and keep it."""
        if self._curve_path is None:
            return
        better = corrected(self.decoder.curve, generation.verify_rows, generation.step_seconds)
        if better is not None:
            self.decoder.curve = better
            save(better, self._curve_path)

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
        chosen = self.drafter(drafter)
        drafts = not isinstance(chosen, NoDrafter)
        if drafts:
            self._curve_for_drafting()
        peak_rss_reset()
        generation = self.decoder.generate(
            prompt, max_tokens=max_tokens, drafter=chosen,
            temperature=temperature, seed=seed, grammar=grammar, on_token=on_token,
            on_prefill=on_prefill,
        )
        if drafts:
            self._learn(generation)
        text = self._llm.detokenize(generation.tokens, prev_tokens=prompt).decode(
            "utf-8", errors="ignore"
        )
        return text, generation, peak_rss_mb()

"""The in-process local runtime: a GGUF model through llama-cpp-python.

Small instruct models do not reliably use a chat template's tool protocol (Qwen2.5-Coder-1.5B
answers a `tools=` request with JSON in a markdown fence, which llama-cpp-python returns as plain
text). So this runtime speaks one text protocol it can parse: the tools are described in the
system prompt, the model replies with a fenced JSON call, earlier calls are replayed in that same
form and tool results come back as user turns. Rendering, parsing and the decoding grammar are
the text tool protocol's (`turnout.runtimes.textprotocol`).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from turnout.runtimes.base import ChatRequest, ChatResponse, GenerationStats, Usage
from turnout.runtimes.errors import ModelError
from turnout.runtimes.local import models
from turnout.runtimes.local.cputurn import cpu_turn
from turnout.runtimes.local.prefixcache import PrefixStore, model_identity
from turnout.runtimes.local.repetition import (
    RepetitionConfig,
    RepetitionGuard,
    llama_cpp_processor,
)
from turnout.runtimes.local.speculative import (
    Generation,
    LocalSpeculation,
    ParallelGeneration,
    llama_with_sequences,
    peak_rss_mb,
    peak_rss_reset,
)
from turnout.runtimes.textprotocol.grammar import PROSE_GRAMMAR, compiled_grammar
from turnout.runtimes.textprotocol.parse import ParsedReply, parse_tool_calls
from turnout.runtimes.textprotocol.render import call_check, to_text_protocol

# Measured on BFCL (`turnout eval toolcalls --category irrelevance ...`, docs/benchmarks.md): the
# threshold that turns most made-up calls into words and almost no fitting one.
CHECK_CALLS_BELOW = 0.85


class LlamaCppConfig(BaseModel):
    """Settings of the in-process runtime."""

    model: str = Field(default=models.DEFAULT_MODEL, description="catalog name or .gguf path")
    n_ctx: int = Field(default=8192, description="context window in tokens")
    n_threads: int | None = Field(default=None, description="CPU threads; None = all cores")
    n_gpu_layers: int = Field(default=0, description="layers offloaded to a GPU build; -1 = all")
    seed: int = Field(default=0, description="sampling seed, for reproducible runs")
    constrain_tool_calls: bool = Field(
        default=True, description="decode under a grammar from the tools' schemas (tool_choice)"
    )
    repetition: RepetitionConfig = Field(
        default_factory=RepetitionConfig, description="when to end a reply that repeats itself"
    )
    # "none" by default for now: drafted tokens are verified in multi-row batches, whose
    # rounding differs from one-row decoding, so at a near-tie (prose, tiny models) a repeated
    # greedy request can come out differently. Opt in with "suffix" where speed matters more.
    drafter: Literal["suffix", "draft-model", "none", "off"] = Field(
        default="none",
        description="speculative drafter of turnout's own decode loop ('none': that loop, no "
        "drafts); 'off': llama-cpp-python's create_chat_completion instead; a request's "
        "`drafter` overrides it per call",
    )
    draft_model: str = Field(
        default="qwen2.5-coder-0.5b", description="catalog name or .gguf path of the draft model"
    )
    calibrate: bool = Field(
        default=True,
        description="measure the batch cost curve once per model and machine (cached in the "
        "models dir); False uses the built-in figures of a 2-core CPU",
    )
    n_seq_max: int = Field(
        default=8, ge=1, le=256,
        description="sequences the context can decode in parallel (a request's n > 1 samples "
        "its completions as parallel sequences sharing the prompt's KV cache, up to this many "
        "per batch); the KV cache is unified, so every sequence may use all n_ctx cells",
    )
    flash_attn: bool = Field(
        default=False,
        description="llama.cpp's flash attention. Off (llama.cpp's default) it is faster at "
        "depth on a CPU, but parallel sampled candidates (n > 1) then round unlike one "
        "sequence alone and drift from their seed's lone reply; on, they equal it bit for bit",
    )
    check_calls_below: float | None = Field(
        default=CHECK_CALLS_BELOW, ge=0, le=1,
        description="under tool_choice auto, when the model answers the user with a call: ask it, "
        "apart from the conversation, whether that tool can do what the user's message asks, and "
        "answer in words instead when its Yes is below this (0: ask, never act; None: never ask)",
    )
    prefix_cache: Path | None = Field(
        default=None,
        description="folder for the KV state of prompts this process evaluates, so a later "
        "process whose prompt begins the same reads it from disk instead of evaluating it "
        "again (None: none kept). It holds the prompts' content: keep it private",
    )
    take_turns: bool = Field(
        default=True,
        description="one model call at a time on this machine: a call waits while another "
        "turnout process's call runs (llama.cpp threads decoding side by side on the same "
        "cores stall each other; see runtimes/local/cputurn.py)",
    )
    progress_min_tokens: int = Field(
        default=1024, ge=1,
        description="report progress while evaluating a prompt with at least this many tokens "
        "not in the cache (on 2 CPU cores about 50 tok/s: 1024 tokens is 20 s)",
    )


class PrefillProgress:
    """Lines about a long prompt evaluation, for a user who would otherwise wait in silence:
    what is new, how far it got, about how long is left, what it cost."""

    def __init__(
        self, say: Callable[[str], None], min_tokens: int, every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self.min_tokens = min_tokens
        self.every_s = every_s
        self.clock = clock
        self.started = self.last = 0.0

    def __call__(self, done: int, new: int, reused: int) -> None:
        if new < self.min_tokens:
            return
        now = self.clock()
        if done == 0:
            self.started = self.last = now
            self.say(f"reading a {new + reused:,}-token prompt ({new:,} new, {reused:,} from the cache) ...")
        elif done >= new:
            took = max(now - self.started, 1e-9)
            self.say(f"read {new:,} prompt tokens in {took:.0f}s ({new / took:.0f} tok/s)")
        elif now - self.last >= self.every_s:
            rate = done / max(now - self.started, 1e-9)
            self.say(f"reading the prompt: {done:,}/{new:,} tokens, about {(new - done) / rate:.0f}s left")
            self.last = now


class TextStream:
    """Decoded tokens as text pieces for `ChatRequest.on_text`. Each token's bytes go through an
    incremental UTF-8 decoder, since byte-level tokenizers split a character across tokens."""

    def __init__(self, llm: Any, sink: Callable[[str], None]) -> None:
        self._llm = llm
        self._sink: Callable[[str], None] | None = sink
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._previous: list[int] | None = None

    def feed(self, token: int) -> bool:
        data = self._llm.detokenize([token], prev_tokens=self._previous)
        self._previous = [token]
        text = self._decoder.decode(data)
        if text and self._sink is not None:
            try:
                self._sink(text)
            except OSError:  # the terminal went away: the reply itself still comes back
                self._sink = None
        return False  # a display never stops the reply


def every(feeds: list[Callable[[int], bool] | None]) -> Callable[[int], bool] | None:
    """One token callback that calls each given one on every token; True when any says stop."""
    live = [feed for feed in feeds if feed is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def feed_all(token: int) -> bool:
        stops = [feed(token) for feed in live]  # all of them, even after one says stop
        return any(stops)

    return feed_all


class LlamaCppModel:
    """A `ChatModel` over llama-cpp-python, loaded once and reused (its KV prefix cache too)."""

    def __init__(
        self, config: LlamaCppConfig | None = None, progress: Callable[[str], None] | None = None
    ) -> None:
        """`progress` receives a line now and then while a long prompt is evaluated."""
        # Imported here so that `turnout --help` and the tests that never load a model stay fast.
        import llama_cpp

        self._progress = progress
        self.config = config or LlamaCppConfig()
        path = models.resolve(self.config.model)
        self.name = f"llama_cpp:{self.config.model if self.config.model in models.CATALOG else path.name}"
        try:
            self._llm = llama_with_sequences(
                self.config.n_seq_max,
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads or os.cpu_count() or 1,
                # Verify batches run on n_threads_batch: the same count keeps the cost curve and
                # "N threads" honest (llama-cpp-python's default is every core).
                n_threads_batch=self.config.n_threads or os.cpu_count() or 1,
                n_gpu_layers=self.config.n_gpu_layers,
                seed=self.config.seed,
                flash_attn=self.config.flash_attn,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"llama.cpp could not load {path}: {exc}; if it is a catalog model run "
                f"`turnout models verify` and `turnout models install`, else check the file is a GGUF"
            ) from exc
        self._llama_cpp = llama_cpp
        self._path = path
        self._speculation: LocalSpeculation | None = None  # made on first use: it calibrates

    @property
    def llama(self) -> Any:
        """The loaded `llama_cpp.Llama`, for comparisons with llama-cpp-python's own paths (the
        `plain` target of `turnout eval toolcalls`)."""
        return self._llm

    def speculation(self) -> LocalSpeculation:
        """turnout's own decode loop over this model (drafters, cost curve, session memory)."""
        if self._speculation is None:
            threads = self.config.n_threads or os.cpu_count() or 1
            self._speculation = LocalSpeculation(
                self._llm, model_path=self._path, n_threads=threads,
                n_gpu_layers=self.config.n_gpu_layers, draft_model=self.config.draft_model,
                calibrate=self.config.calibrate,
            )
            if self.config.prefix_cache is not None:
                self._speculation.decoder.prefixes = PrefixStore(
                    self.config.prefix_cache, model_identity(self._path, flash_attn=self.config.flash_attn))
        return self._speculation

    def _chat_speculative(
        self, request: ChatRequest, messages: list[dict[str, str]], drafter: str, grammar: Any,
        guard: RepetitionGuard | None,
    ) -> ChatResponse:
        on_prefill = None
        if self._progress is not None:
            on_prefill = PrefillProgress(self._progress, self.config.progress_min_tokens)
        speculation = self.speculation()

        def decode(constraint: Any, watch: RepetitionGuard | None) -> tuple[str, Generation, float]:
            feeds = [watch.feed if watch is not None and self.config.repetition.enabled else None]
            if request.on_text is not None:
                feeds.append(TextStream(self._llm, request.on_text).feed)
            return speculation.complete(
                messages, max_tokens=request.max_tokens, temperature=request.temperature,
                seed=self._seed(request), drafter=drafter, grammar=constraint, on_token=every(feeds),
                on_prefill=on_prefill,
            )

        raw, gen, peak = decode(grammar, guard)
        stats = GenerationStats(
            prompt_tokens=gen.prompt_tokens, cached_prompt_tokens=gen.cached_prompt_tokens,
            disk_prompt_tokens=gen.disk_prompt_tokens,
            prefill_seconds=gen.prefill_seconds, decode_seconds=gen.decode_seconds,
            completion_tokens=len(gen.tokens), drafted=gen.drafted, accepted=gen.accepted,
            draft_steps=gen.draft_steps, drafter=drafter, peak_rss_mb=peak,
        )
        below = self.config.check_calls_below
        # Only a call made in answer to the user's words is checked: after a tool's result the
        # model is carrying out a task, and under `required` a call is wanted whatever fits.
        calls = parse_tool_calls(raw, request.tools).calls if below is not None else []
        if (calls and grammar is not None and (request.tool_choice or "auto") == "auto"
                and request.messages[-1].role == "user"):
            tool = next(t for t in request.tools if t.name == calls[0].name)
            stats.call_check = speculation.yes_probability(call_check(tool, request.messages[-1].content))
            if stats.call_check is not None and below is not None and stats.call_check < below:
                # The model doubts its own call: the reply is decoded again, in words. (A
                # display shown the call's fence hid it; the words follow on a line of their own.)
                if request.on_text is not None:
                    request.on_text("\n")
                raw, gen, peak = decode(PROSE_GRAMMAR, None)
                stats.declined_call = True
                stats.completion_tokens += len(gen.tokens)
                stats.prefill_seconds += gen.prefill_seconds
                stats.decode_seconds += gen.decode_seconds
                stats.peak_rss_mb = max(stats.peak_rss_mb, peak)
        return self._reply(request, raw, stats, gen.finish_reason, guard, words=stats.declined_call)

    def chat(self, request: ChatRequest) -> ChatResponse:
        """One reply; with `request.n > 1` and a temperature above 0, `n` sampled ones.

        The n completions (completion i from seed `seed + i`) come back in `candidates`, the
        first also as the reply itself; its usage counts the prompt once and every
        completion's tokens. turnout's own loop decodes them as parallel sequences that share
        the prompt's KV cache (any drafter is ignored: there are no drafts in that path); with
        `drafter="off"` llama-cpp-python samples them one after another. Each completion
        samples the distribution its seed samples alone; it is that very reply bit for bit
        with `flash_attn`, and without it drifts from it by rounding (see
        `SpeculativeDecoder.generate_many`). At temperature 0 every completion would be the
        same greedy one, so one is decoded and `candidates` holds just it. The repetition
        guard watches each completion on its own (none under a grammar, as for one reply).
        """
        turn = cpu_turn(self._progress) if self.config.take_turns else contextlib.nullcontext()
        with turn:
            if request.n > 1:
                if request.temperature <= 0:
                    reply = self._chat_one(request.model_copy(update={"n": 1}))
                    return reply.model_copy(update={"candidates": [reply.model_copy()]})
                return self._chat_many(request)
            return self._chat_one(request)

    def _seed(self, request: ChatRequest) -> int:
        return request.seed if request.seed is not None else self.config.seed

    def _chat_many(self, request: ChatRequest) -> ChatResponse:
        drafter = request.drafter or self.config.drafter
        if drafter == "off":
            seed = self._seed(request)
            replies = [
                self._chat_one(request.model_copy(update={"n": 1, "seed": seed + i}))
                for i in range(request.n)
            ]
            return combine_candidates(replies)
        messages = to_text_protocol(request.messages, request.tools, request.tool_choice)
        self._llama_cpp.llama_perf_context_reset(self._llm.ctx)
        grammar = None
        if self.config.constrain_tool_calls:
            grammar = compiled_grammar(request.tools, request.tool_choice or "auto")
        guards: list[RepetitionGuard | None] = [
            RepetitionGuard(self.config.repetition)
            if grammar is None and self.config.repetition.enabled else None
            for _ in range(request.n)
        ]
        on_prefill = None
        if self._progress is not None:
            on_prefill = PrefillProgress(self._progress, self.config.progress_min_tokens)
        speculation = self.speculation()
        prompt = speculation.prompt_tokens(messages)
        peak_rss_reset()
        gen = speculation.decoder.generate_many(
            prompt, n=request.n, max_tokens=request.max_tokens, temperature=request.temperature,
            seed=self._seed(request), grammar=grammar,
            on_token=[g.feed if g is not None else None for g in guards], on_prefill=on_prefill,
        )
        peak = peak_rss_mb()
        replies = []
        for seq, guard in zip(gen.sequences, guards):
            raw = self._llm.detokenize(seq.tokens, prev_tokens=prompt).decode(
                "utf-8", errors="ignore"
            )
            stats = GenerationStats(
                prompt_tokens=seq.prompt_tokens, cached_prompt_tokens=seq.cached_prompt_tokens,
                disk_prompt_tokens=seq.disk_prompt_tokens,
                prefill_seconds=seq.prefill_seconds, decode_seconds=seq.decode_seconds,
                completion_tokens=len(seq.tokens), drafter="none", peak_rss_mb=peak,
            )
            replies.append(self._reply(request, raw, stats, seq.finish_reason, guard))
        return combine_candidates(replies, gen)

    def _chat_one(self, request: ChatRequest) -> ChatResponse:
        messages = to_text_protocol(request.messages, request.tools, request.tool_choice)
        ctx = self._llm.ctx
        self._llama_cpp.llama_perf_context_reset(ctx)
        grammar = None
        if self.config.constrain_tool_calls:
            grammar = compiled_grammar(request.tools, request.tool_choice or "auto")
        # The repetition guard ends a reply by forcing end-of-sequence, which a grammar may not
        # allow mid-call; under a grammar the reply's shape is bounded by the grammar instead.
        guard = RepetitionGuard(self.config.repetition) if grammar is None else None
        extra: dict[str, Any] = {"grammar": grammar} if grammar is not None else {}
        if guard is not None and self.config.repetition.enabled:
            processor = llama_cpp_processor(guard, self._llm.token_eos())
            extra["logits_processor"] = self._llama_cpp.LogitsProcessorList([processor])
        drafter = request.drafter or self.config.drafter
        if drafter != "off":
            return self._chat_speculative(request, messages, drafter, grammar, guard)
        started = time.perf_counter()
        result: Any = self._llm.create_chat_completion(
            messages=messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=self._seed(request),
            **extra,
        )
        wall = time.perf_counter() - started
        perf = self._llama_cpp.llama_perf_context(ctx)
        choice = result["choices"][0]
        raw = choice["message"].get("content") or ""
        usage = result.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
        prefill_s = perf.t_p_eval_ms / 1000.0
        decode_s = perf.t_eval_ms / 1000.0 if perf.t_eval_ms > 0 else max(wall - prefill_s, 0.0)
        stats = GenerationStats(
            prompt_tokens=prompt_tokens,
            cached_prompt_tokens=max(prompt_tokens - int(perf.n_p_eval), 0),
            prefill_seconds=prefill_s,
            decode_seconds=decode_s,
            completion_tokens=completion_tokens,
        )
        return self._reply(request, raw, stats, choice.get("finish_reason") or "stop", guard)

    def _reply(
        self, request: ChatRequest, raw: str, stats: GenerationStats, finish_reason: str,
        guard: RepetitionGuard | None, words: bool = False,
    ) -> ChatResponse:
        """A decoded text as a reply: the repetition guard's verdict, the tool calls parsed.
        `words`: a reply decoded as words because its call was doubted, which carries no call
        even where the words spell one out (a bare JSON object the parser would take)."""
        if guard is not None and guard.tripped:
            finish_reason = "repetition"
            stats.repetition_aborted = True
            stats.tokens_saved = max(request.max_tokens - stats.completion_tokens, 0)
        parsed = ParsedReply(text=raw.strip()) if words else parse_tool_calls(raw, request.tools)
        return ChatResponse(
            text=parsed.text, tool_calls=parsed.calls,
            problems=[p.message for p in parsed.problems], raw_text=raw,
            finish_reason=finish_reason,
            usage=Usage(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens),
            stats=stats, model=self.name,
        )


def combine_candidates(
    replies: list[ChatResponse], generation: ParallelGeneration | None = None
) -> ChatResponse:
    """One reply standing for n sampled ones: the first, with every reply in `candidates`,
    usage counting the prompt once and all completions' tokens, and stats for the whole call
    (from `generation` when they were decoded together, else added up call by call)."""
    first = replies[0]
    completion = sum(r.usage.completion_tokens for r in replies)
    usage = Usage(prompt_tokens=first.usage.prompt_tokens, completion_tokens=completion)
    stats = first.stats.model_copy(update={
        "completion_tokens": completion,
        "tokens_saved": sum(r.stats.tokens_saved for r in replies),
        "repetition_aborted": any(r.stats.repetition_aborted for r in replies),
        "peak_rss_mb": max(r.stats.peak_rss_mb for r in replies),
    })
    if generation is not None:
        stats.prefill_seconds = generation.prefill_seconds
        stats.decode_seconds = generation.decode_seconds
    else:
        stats.prefill_seconds = sum(r.stats.prefill_seconds for r in replies)
        stats.decode_seconds = sum(r.stats.decode_seconds for r in replies)
        stats.drafted = sum(r.stats.drafted for r in replies)
        stats.accepted = sum(r.stats.accepted for r in replies)
        stats.draft_steps = sum(r.stats.draft_steps for r in replies)
    return first.model_copy(update={
        "usage": usage, "stats": stats,
        "candidates": [r.model_copy() for r in replies],
    })

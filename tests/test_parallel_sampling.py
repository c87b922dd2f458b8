"""n sampled candidates as parallel sequences that share the prompt's KV cache.

The model tests run the tiny SmolLM2-135M (installed by `make test`). Every sequence must be
what its seed gives when sampled alone, the prefix cache must still serve the next call, and
temperature 0 must not decode the same greedy reply n times.
"""

from __future__ import annotations

from typing import Any

import pytest
from turnout.agent.cli.main import build_parser
from turnout.bench.sampling import divergence, quiet_cost, render
from turnout.runtimes.base import ChatRequest, ChatResponse, GenerationStats, Message, Usage
from turnout.runtimes.local import models
from turnout.runtimes.local.costcurve import CostCurve
from turnout.runtimes.local.llama_cpp import LlamaCppConfig, LlamaCppModel, combine_candidates
from turnout.runtimes.local.speculative import (
    Generation,
    ParallelGeneration,
    SpeculativeDecoder,
    llama_with_sequences,
)

_FREE = CostCurve(ratios={1: 1.0, 64: 1.0})

# --- without a model ------------------------------------------------------------------------


def reply(text: str, prompt: int, completion: int, **stats: Any) -> ChatResponse:
    return ChatResponse(
        text=text, raw_text=text, usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
        stats=GenerationStats(prompt_tokens=prompt, completion_tokens=completion, **stats),
    )


def test_combined_candidates_count_the_prompt_once_and_every_completion() -> None:
    replies = [reply("a", 100, 5, decode_seconds=1.0), reply("b", 100, 7, decode_seconds=1.5),
               reply("c", 100, 3, decode_seconds=0.5)]
    together = ParallelGeneration(
        sequences=[], prompt_tokens=100, cached_prompt_tokens=90, prefill_seconds=0.2,
        decode_seconds=1.6,
    )
    combined = combine_candidates(replies, together)
    assert combined.text == combined.raw_text == "a"  # the first candidate stands for all
    assert [c.text for c in combined.candidates] == ["a", "b", "c"]
    assert combined.usage.prompt_tokens == 100 and combined.usage.completion_tokens == 15
    assert combined.stats.completion_tokens == 15
    assert combined.stats.decode_seconds == 1.6  # decoded together: the wall time, not a sum
    assert [c.usage.completion_tokens for c in combined.candidates] == [5, 7, 3]
    assert all(not c.candidates for c in combined.candidates)
    # One call after another (the library path): their times add up.
    assert combine_candidates(replies).stats.decode_seconds == 3.0


def test_generate_many_does_groups_of_what_the_context_holds() -> None:
    calls: list[tuple[str, int, int]] = []

    class Narrow(SpeculativeDecoder):
        max_sequences = 2  # type: ignore[assignment]

        def __init__(self) -> None:
            self._n_ctx = 1000

        def generate(self, prompt: Any, **kw: Any) -> Generation:
            calls.append(("one", kw["seed"], 1))
            return Generation([kw["seed"]], "length", len(prompt), 0, 0.1, 1.0)

        def _run_parallel(self, prompt: Any, k: int, max_tokens: int, temperature: float,
                          seed: int, *rest: Any) -> ParallelGeneration:
            calls.append(("many", seed, k))
            seqs = [Generation([seed + i], "length", len(prompt), 0, 0.1, 1.0) for i in range(k)]
            return ParallelGeneration(seqs, len(prompt), 0, 0.1, 1.0)

    out = Narrow().generate_many([1, 2, 3], n=5, max_tokens=4, temperature=0.7, seed=10)
    assert calls == [("many", 10, 2), ("many", 12, 2), ("one", 14, 1)]
    assert [g.tokens for g in out.sequences] == [[10], [11], [12], [13], [14]]
    assert out.decode_seconds == 3.0 and out.completion_tokens == 5


def test_a_divergence_reports_its_position_and_how_near_a_tie_it_was() -> None:
    alone = Generation([5, 6, 7], "length", 10, 0, 0.0, 0.0)
    alone.top = [([5, 1], [3.0, 1.0]), ([6, 9, 2], [2.0, 1.95, 1.0]), ([7, 9], [1.0, 0.5])]
    together = Generation([5, 9, 7], "length", 10, 0, 0.0, 0.0)
    together.top = [([5, 1], [3.0, 1.0]), ([9, 6, 2], [1.99, 1.97, 1.0]), ([7], [1.0])]
    assert divergence(alone, alone) is None
    d = divergence(alone, together)
    assert d == {"position": 1, "top2_gap": 0.05, "chosen_gap": 0.05, "max_logit_delta": 0.04}


def test_the_bench_report_renders_and_the_cli_knows_the_sampling_bench() -> None:
    args = build_parser().parse_args(["bench", "sampling", "--n", "4", "--rounds", "1", "--json"])
    assert args.bench_command == "sampling" and args.n == "4" and args.tokens == 200
    report = {
        "model": "m", "threads": 2, "rounds": 1, "tokens": 8, "temperature": 0.8,
        "prompt_tokens": 50, "cold_prefill_s": 1.0,
        "modes": {
            "greedy": {"decode_s": 1.0, "prefill_s": 0.01, "tokens_per_sequence": [8],
                       "ratio_vs_greedy": 1.0, "per_token_vs_greedy": 1.0,
                       "quiet_ratio_vs_greedy": 1.0, "step_p25_ms": 40.0},
            "parallel-4": {"decode_s": 2.0, "prefill_s": 0.01, "tokens_per_sequence": [8] * 4,
                           "ratio_vs_greedy": 2.0, "per_token_vs_greedy": 0.5, "identical": 3,
                           "quiet_ratio_vs_greedy": 2.5, "step_p25_ms": 100.0,
                           "sequences": [{"seed": 0, "identical_to_alone": True, "divergence": None}] * 3
                           + [{"seed": 3, "identical_to_alone": False, "divergence": {
                               "position": 4, "top2_gap": 1.0, "chosen_gap": 0.01,
                               "max_logit_delta": 0.02}}]},
        },
    }
    text = render(report)
    assert "parallel-4" in text and "2.00x" in text and "2.50x" in text
    assert "3/4; seed 3 @4" in text
    assert quiet_cost([{"steps": [1.0, 9.0, 1.0, 1.0, 1.0]}]) == 5.0  # one slowed step ignored


def test_the_local_runtime_allows_parallel_sequences_by_default() -> None:
    assert LlamaCppConfig().n_seq_max == 8
    assert ChatRequest(messages=[]).n == 1


# --- on a real model ------------------------------------------------------------------------

PROMPT = [Message(role="user", content="Write a short poem about a cat who likes boxes.")]


def local(n_seq_max: int = 4, flash_attn: bool = False) -> LlamaCppModel:
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    return LlamaCppModel(
        LlamaCppConfig(model=models.TEST_MODEL, n_ctx=2048, n_threads=2, calibrate=False,
                       n_seq_max=n_seq_max, flash_attn=flash_attn)
    )


@pytest.fixture(scope="module")
def tiny() -> LlamaCppModel:
    """The runtime's defaults: llama.cpp's attention without flash attention."""
    return local()


@pytest.fixture(scope="module")
def exact() -> LlamaCppModel:
    """With flash attention, where parallel sequences equal lone ones bit for bit."""
    return local(flash_attn=True)


def sampled(n: int, seed: int = 7, max_tokens: int = 24) -> ChatRequest:
    return ChatRequest(messages=PROMPT, max_tokens=max_tokens, temperature=0.8, seed=seed, n=n)


@pytest.mark.model
def test_n_sampled_candidates_each_equal_their_seed_sampled_alone(exact: LlamaCppModel) -> None:
    # Every call below starts from the same cache state: the prompt cached but for its last
    # token, which each call evaluates alone before sampling its first token.
    exact.chat(sampled(1, max_tokens=1))
    many = exact.chat(sampled(3))
    alone = [exact.chat(sampled(1, seed=7 + i)) for i in range(3)]

    assert len(many.candidates) == 3
    assert many.raw_text == many.candidates[0].raw_text
    assert many.usage.prompt_tokens == alone[0].usage.prompt_tokens  # the prompt counted once
    assert many.usage.completion_tokens == sum(c.usage.completion_tokens for c in many.candidates)
    assert len({c.raw_text for c in many.candidates}) == 3  # three seeds, three samples
    # Exact, and nothing loosened: with flash attention each batch row attends to its own
    # sequence's cells only, in order, and the weights' kernels treat rows alike, so a row of
    # a 3-row batch computes the very logits a lone row does (`generate_many` explains why
    # llama.cpp's default attention does not).
    assert [c.raw_text for c in many.candidates] == [a.raw_text for a in alone]
    assert [c.usage.completion_tokens for c in many.candidates] == [
        a.usage.completion_tokens for a in alone
    ]


def lone_and_parallel(model: LlamaCppModel, n: int = 4) -> tuple[list[Generation], Any, int]:
    decoder = model.speculation().decoder
    prompt = model.speculation().prompt_tokens([{"role": "user", "content": "Name some fruits."}])
    decoder.forget()
    decoder.prefill(prompt)
    together = decoder.generate_many(
        prompt, n=n, max_tokens=24, temperature=0.8, seed=3, ignore_eos=True, diagnostics=True
    )
    alone = [
        decoder.generate(prompt, max_tokens=24, temperature=0.8, seed=3 + i, ignore_eos=True,
                         diagnostics=True)
        for i in range(n)
    ]
    assert [len(g.tokens) for g in together.sequences] == [24] * n  # end of text forbidden
    assert together.batch_rows == [n] * 23  # one batch per step, every sequence in it
    # The cache holds the prompt and sequence 0's output, and no other sequence.
    assert decoder.cached_tokens[: len(prompt)] == prompt
    assert decoder.kv_positions() == len(decoder.cached_tokens)
    return alone, together, len(prompt)


@pytest.mark.model
def test_with_flash_attention_parallel_rows_compute_the_lone_rows_logits(exact: LlamaCppModel) -> None:
    alone, together, _ = lone_and_parallel(exact)
    for a, t in zip(alone, together.sequences):
        assert t.tokens == a.tokens
        assert t.top == a.top  # the top logits of every position, to the last bit


@pytest.mark.model
def test_with_default_attention_parallel_sequences_only_drift_by_rounding(tiny: LlamaCppModel) -> None:
    # llama.cpp's default attention sums over interleaved cells of every sequence: the rows
    # round differently from a lone row, and a sampled sequence drifts from its lone reply
    # after a few tokens. What must hold: the same distribution up to that rounding (a wrong
    # position, sequence or seed would differ from the first token, by whole logits).
    alone, together, _ = lone_and_parallel(tiny)
    assert alone[0].top[0] == together.sequences[0].top[0]  # the shared prompt row: one row
    for a, t in zip(alone, together.sequences):
        d = divergence(a, t)
        if d is None:
            continue
        assert d["position"] >= 1, d
        for p in range(d["position"] + 1):
            ids, logits = a.top[p]
            mine = dict(zip(*t.top[p]))
            assert max(abs(v - mine[i]) for i, v in zip(ids, logits) if i in mine) < 1.0, (p, d)


@pytest.mark.model
def test_the_prefix_cache_still_serves_a_greedy_call_after_a_parallel_one(tiny: LlamaCppModel) -> None:
    import llama_cpp

    greedy = ChatRequest(messages=PROMPT, max_tokens=24)
    before = tiny.chat(greedy)
    many = tiny.chat(sampled(3))
    after = tiny.chat(greedy)

    assert len(many.candidates) == 3
    assert after.stats.cached_prompt_tokens > 0
    assert after.stats.cached_prompt_tokens == after.stats.prompt_tokens - 1
    assert after.raw_text == before.raw_text
    mem = llama_cpp.llama_get_memory(tiny.llama.ctx)
    assert [llama_cpp.llama_memory_seq_pos_max(mem, s) for s in (1, 2, 3)] == [-1, -1, -1]


@pytest.mark.model
def test_temperature_zero_with_n_decodes_one_greedy_candidate(tiny: LlamaCppModel) -> None:
    reply = tiny.chat(ChatRequest(messages=PROMPT, max_tokens=16, n=4))
    assert len(reply.candidates) == 1
    assert reply.candidates[0].raw_text == reply.raw_text
    assert reply.usage.completion_tokens == reply.candidates[0].usage.completion_tokens <= 16


@pytest.mark.model
def test_each_candidate_follows_its_own_grammar(tiny: LlamaCppModel) -> None:
    from turnout.runtimes.base import ToolSpec

    tool = ToolSpec(
        name="read_file", description="Read a file.",
        input_schema={"type": "object", "properties": {"path": {"type": "string"}},
                      "required": ["path"]},
    )
    request = ChatRequest(
        messages=[Message(role="user", content="Read the file src/app/main.py.")], tools=[tool],
        tool_choice="required", max_tokens=48, temperature=0.8, seed=1, n=3,
    )
    reply = tiny.chat(request)
    assert len(reply.candidates) == 3
    for candidate in reply.candidates:
        if candidate.finish_reason == "stop":  # a finished reply is a whole call
            assert [c.name for c in candidate.tool_calls] == ["read_file"], candidate.raw_text


@pytest.mark.model
def test_a_context_for_one_sequence_samples_the_candidates_one_after_another() -> None:
    single = local(n_seq_max=1)
    assert single.speculation().decoder.max_sequences == 1
    reply = single.chat(sampled(2))
    assert len(reply.candidates) == 2
    assert reply.candidates[0].raw_text != reply.candidates[1].raw_text
    assert reply.candidates[1].raw_text == single.chat(sampled(1, seed=8)).raw_text


@pytest.mark.model
def test_more_sequences_in_the_context_leave_greedy_decoding_unchanged() -> None:
    import llama_cpp

    path = str(models.resolve(models.TEST_MODEL))
    kwargs: dict[str, Any] = {
        "model_path": path, "n_ctx": 1024, "n_threads": 2, "n_threads_batch": 2, "verbose": False,
    }
    plain = SpeculativeDecoder(llama_cpp.Llama(**kwargs), _FREE)
    wide = SpeculativeDecoder(llama_with_sequences(8, **kwargs), _FREE)
    assert plain.max_sequences == 1 and wide.max_sequences == 8
    prompt = list(plain._llm.tokenize(
        b"<|im_start|>user\nCount from one to ten in words.<|im_end|>\n<|im_start|>assistant\n",
        add_bos=False, special=True,
    ))
    assert wide.generate(prompt, max_tokens=24).tokens == plain.generate(prompt, max_tokens=24).tokens

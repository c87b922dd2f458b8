"""turnout's draft/verify loop on a real GGUF (Qwen2.5-Coder-0.5B, installed by `make test`).

Speculation must never change what the model says: whatever the drafter proposes (right, wrong,
random, forbidden by a grammar), the output equals plain decoding's, the KV cache holds exactly
the accepted tokens, and sampling at temperature > 0 draws the same tokens from the same seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest
from turnout.runtimes.base import ChatRequest, Message, ToolSpec
from turnout.runtimes.local import models
from turnout.runtimes.local.costcurve import CostCurve
from turnout.runtimes.local.drafters import Draft, NoDrafter
from turnout.runtimes.local.llama_cpp import LlamaCppConfig, LlamaCppModel
from turnout.runtimes.local.speculative import DraftModelDrafter, SpeculativeDecoder

pytestmark = pytest.mark.model

MODEL = "qwen2.5-coder-0.5b"
# Every batch costs the same as one token: the decoder then verifies every draft it is given,
# which is what these tests need to exercise the verify and rollback paths.
FREE_BATCHES = CostCurve(ratios={1: 1.0, 64: 1.0})

CODE_PROMPT = (
    "<|im_start|>user\nReturn this file with `total` renamed to `acc`, in a ```python block:\n"
    "```python\ndef add_all(items):\n    total = 0\n    for item in items:\n        total += item\n"
    "    return total\n```<|im_end|>\n<|im_start|>assistant\n"
)
JSON_PROMPT = (
    "<|im_start|>user\nReply with only this JSON object, unchanged: "
    '{"name": "read_file", "arguments": {"path": "src/calc.py", "start": 10}}<|im_end|>\n'
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    import llama_cpp

    if not models.is_installed(MODEL):
        pytest.fail(f"run `turnout models install {MODEL}` (make test does it)")
    return llama_cpp.Llama(
        model_path=str(models.resolve(MODEL)), n_ctx=2048, n_threads=2, n_threads_batch=2,
        verbose=False,
    )


@pytest.fixture(scope="module")
def decoder(llm) -> SpeculativeDecoder:  # type: ignore[no-untyped-def]
    return SpeculativeDecoder(llm, FREE_BATCHES, max_draft=4)


def tokens_of(llm, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return list(llm.tokenize(text.encode(), add_bos=False, special=True))


class ScriptedDrafter:
    """Drafts from a function of the generated tokens so far, always with full confidence."""

    name = "scripted"
    cost_per_token = 0.0

    def __init__(self, prompt_length: int, guess) -> None:  # type: ignore[no-untyped-def]
        self.prompt_length = prompt_length
        self.guess = guess
        self.proposed = 0

    def begin(self, prompt_tokens: Sequence[int]) -> None:
        pass

    def propose(self, context: Sequence[int], max_tokens: int) -> Draft:
        tokens = list(self.guess(list(context[self.prompt_length :]), max_tokens))[:max_tokens]
        self.proposed += len(tokens)
        return Draft(tokens=tokens, confidence=[1.0] * len(tokens))

    def feedback(self, drafted: int, accepted: int) -> None:
        pass

    def finish(self, context: Sequence[int]) -> None:
        pass


@pytest.fixture(scope="module")
def reference(llm, decoder) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Plain greedy outputs of our loop, which the first test pins to llama-cpp-python's."""
    return {
        name: decoder.generate(tokens_of(llm, prompt), max_tokens=32, drafter=NoDrafter()).tokens
        for name, prompt in [("code", CODE_PROMPT), ("json", JSON_PROMPT)]
    }


def test_the_plain_loop_equals_llama_cpp_pythons_greedy_completion(llm, reference) -> None:  # type: ignore[no-untyped-def]
    for name, prompt in [("code", CODE_PROMPT), ("json", JSON_PROMPT)]:
        theirs = llm.create_completion(prompt, max_tokens=32, temperature=0.0)
        ours = llm.detokenize(reference[name]).decode()
        assert ours == theirs["choices"][0]["text"], name


@pytest.mark.parametrize("prompt_name", ["code", "json"])
def test_a_drafter_that_knows_the_answer_is_accepted_and_changes_nothing(
    llm, decoder, reference, prompt_name: str  # type: ignore[no-untyped-def]
) -> None:
    prompt = tokens_of(llm, CODE_PROMPT if prompt_name == "code" else JSON_PROMPT)
    expected = reference[prompt_name]
    oracle = ScriptedDrafter(len(prompt), lambda out, n: expected[len(out) : len(out) + n])
    result = decoder.generate(prompt, max_tokens=32, drafter=oracle)
    assert result.tokens == expected
    assert result.drafted > 0 and result.accepted == result.drafted
    assert max(result.verify_rows) > 1  # several tokens were verified in one batch


def test_a_drafter_that_is_always_wrong_leaves_the_output_unchanged(llm, decoder, reference) -> None:  # type: ignore[no-untyped-def]
    prompt = tokens_of(llm, CODE_PROMPT)
    expected = reference["code"]

    def wrong(out: list[int], n: int) -> list[int]:
        truth = expected[len(out) : len(out) + n]
        return [(t + 1) % 1000 for t in truth] or [13]

    result = decoder.generate(prompt, max_tokens=32, drafter=ScriptedDrafter(len(prompt), wrong))
    assert result.tokens == expected
    assert result.drafted > 0 and result.accepted == 0


def test_a_random_drafter_leaves_the_output_unchanged(llm, decoder, reference) -> None:  # type: ignore[no-untyped-def]
    prompt = tokens_of(llm, JSON_PROMPT)
    rng = random.Random(5)
    # Random tokens, sometimes the right next token followed by noise.
    expected = reference["json"]

    def noisy(out: list[int], n: int) -> list[int]:
        truth = expected[len(out) : len(out) + n]
        keep = rng.randint(0, len(truth))
        return truth[:keep] + [rng.randrange(0, 150_000) for _ in range(n - keep)]

    drafter = ScriptedDrafter(len(prompt), noisy)
    result = decoder.generate(prompt, max_tokens=32, drafter=drafter)
    assert result.tokens == expected
    assert 0 < result.accepted < result.drafted


def test_the_kv_cache_is_rolled_back_to_the_accepted_tokens_after_a_partial_acceptance(
    llm, decoder, reference  # type: ignore[no-untyped-def]
) -> None:
    prompt = tokens_of(llm, CODE_PROMPT)
    expected = reference["code"]

    def two_right_then_wrong(out: list[int], n: int) -> list[int]:
        truth = expected[len(out) : len(out) + n]
        return truth[:2] + [(t + 7) % 1000 for t in truth[2:]]

    # Before every draft the cache holds the prompt and the output but its newest token (the
    # target's latest choice, evaluated with the next batch), and llama.cpp agrees on how many
    # positions that is: no rejected draft was left behind.
    seen: list[tuple[list[int], int, list[int]]] = []

    class Watching(ScriptedDrafter):
        def propose(self, context: Sequence[int], max_tokens: int) -> Draft:
            seen.append((decoder.cached_tokens, decoder.kv_positions(), list(context)))
            return super().propose(context, max_tokens)

    result = decoder.generate(
        prompt, max_tokens=20, drafter=Watching(len(prompt), two_right_then_wrong)
    )
    assert result.tokens == expected[:20]
    # Every step took exactly two drafts, but the last, which may stop early at max_tokens.
    assert 2 * (result.draft_steps - 1) <= result.accepted <= 2 * result.draft_steps
    assert len(seen) == result.draft_steps
    for cached, positions, context in seen:
        assert cached == context[:-1]
        assert positions == len(cached)
    # Afterwards the cache holds the prompt and the output (the last token too if it was an
    # accepted draft), and a later call that continues the same text reuses it.
    cached = decoder.cached_tokens
    assert len(prompt) + 19 <= len(cached) <= len(prompt) + 20
    assert cached == (prompt + expected[:20])[: len(cached)]
    assert decoder.kv_positions() == len(cached)
    again = decoder.generate(prompt + expected[:10], max_tokens=10, drafter=NoDrafter())
    assert again.cached_prompt_tokens == len(prompt) + 9
    assert again.tokens == expected[10:20]


def test_sampling_with_drafts_is_reproducible_from_its_seed_and_really_samples(
    llm, decoder  # type: ignore[no-untyped-def]
) -> None:
    prompt = tokens_of(
        llm, "<|im_start|>user\nInvent ten new words and give each a silly meaning.<|im_end|>\n"
        "<|im_start|>assistant\n",
    )
    plain = decoder.generate(prompt, max_tokens=24, temperature=1.5, seed=11)

    def drafter() -> ScriptedDrafter:
        return ScriptedDrafter(len(prompt), lambda out, n: plain.tokens[len(out) : len(out) + 3] + [42])

    first = decoder.generate(prompt, max_tokens=24, temperature=1.5, seed=11, drafter=drafter())
    again = decoder.generate(prompt, max_tokens=24, temperature=1.5, seed=11, drafter=drafter())
    other_seed = decoder.generate(prompt, max_tokens=24, temperature=1.5, seed=12, drafter=drafter())
    assert first.tokens == again.tokens
    assert first.accepted > 0  # drafts of what the target drew were taken
    assert other_seed.tokens != first.tokens  # the seed matters: this really samples


def test_grammar_plus_speculation_still_yields_valid_json(llm, decoder) -> None:  # type: ignore[no-untyped-def]
    grammar = (
        'root ::= "{\\"path\\": \\"" [a-z/.]+ "\\", \\"line\\": " [0-9]+ "}"'
    )
    prompt = tokens_of(
        llm, "<|im_start|>user\nGive the path src/calc.py and line 12 as JSON.<|im_end|>\n"
        "<|im_start|>assistant\n",
    )
    plain = decoder.generate(prompt, max_tokens=40, grammar=grammar)
    rng = random.Random(3)
    # Random drafts are almost all forbidden by the grammar: they must simply be rejected.
    noisy = ScriptedDrafter(len(prompt), lambda out, n: [rng.randrange(0, 150_000) for _ in range(n)])
    drafted = decoder.generate(prompt, max_tokens=40, grammar=grammar, drafter=noisy)
    assert drafted.tokens == plain.tokens
    value = json.loads(llm.detokenize(drafted.tokens).decode())
    assert set(value) == {"path", "line"}
    assert noisy.proposed > 0


def test_a_draft_model_keeps_its_own_cache_in_step(llm, decoder, reference) -> None:  # type: ignore[no-untyped-def]
    import llama_cpp

    # The draft model here is the target itself: it should agree with nearly every token, and
    # its cache must follow the target's through accepted and rejected steps alike.
    draft_llm = llama_cpp.Llama(
        model_path=str(models.resolve(MODEL)), n_ctx=2048, n_threads=2, n_threads_batch=2,
        verbose=False,
    )
    drafter = DraftModelDrafter(draft_llm, cost_per_token=0.0, max_draft=4)
    prompt = tokens_of(llm, CODE_PROMPT)
    result = decoder.generate(prompt, max_tokens=32, drafter=drafter)
    assert result.tokens == reference["code"]
    assert result.drafted > 10 and result.accepted >= 0.8 * result.drafted


def test_the_runtime_reports_speculation_stats_and_answers_alike_with_each_drafter() -> None:
    model = LlamaCppModel(
        LlamaCppConfig(model=MODEL, n_ctx=2048, n_threads=2, calibrate=False)
    )
    text = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
    messages = [Message(role="user", content=f"Repeat this code exactly, in a ```python block:\n```python\n{text}```")]
    replies = {
        drafter: model.chat(ChatRequest(messages=messages, max_tokens=60, drafter=drafter))
        for drafter in ["none", "suffix", "off"]
    }
    assert replies["suffix"].raw_text == replies["none"].raw_text == replies["off"].raw_text
    stats = replies["suffix"].stats
    assert stats.drafter == "suffix"
    assert stats.drafted > 0 and 0 < stats.acceptance_rate <= 1
    assert stats.mean_accepted_length > 1
    assert stats.peak_rss_mb > 100 and stats.decode_tps > 0
    assert replies["none"].stats.drafted == 0


def test_a_tool_call_under_the_tools_grammar_parses_with_speculation_on() -> None:
    model = LlamaCppModel(LlamaCppConfig(model=MODEL, n_ctx=2048, n_threads=2, calibrate=False))
    tool = ToolSpec(
        name="read_file", description="Read a file.",
        input_schema={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    )
    request = ChatRequest(
        messages=[Message(role="user", content="Read the file src/app/main.py.")],
        tools=[tool], tool_choice="required", max_tokens=32, drafter="suffix",
    )
    reply = model.chat(request)
    assert [c.name for c in reply.tool_calls] == ["read_file"]
    assert isinstance(reply.tool_calls[0].arguments.get("path"), str)


def test_a_near_tie_in_a_batch_is_decided_on_its_own_row(
    llm, decoder, reference, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # Every row counts as a near tie: each accepted draft's row is dropped and evaluated alone,
    # and the output is still the plain one, token for token.
    from turnout.runtimes.local import speculative

    monkeypatch.setattr(speculative, "NEAR_TIE_GAP", 1e9)
    prompt = tokens_of(llm, CODE_PROMPT)
    expected = reference["code"]
    oracle = ScriptedDrafter(len(prompt), lambda out, n: expected[len(out) : len(out) + n])
    result = decoder.generate(prompt, max_tokens=32, drafter=oracle)
    assert result.tokens == expected
    assert result.near_ties > 0
    assert decoder.cached_tokens[: len(prompt)] == prompt
    assert decoder.kv_positions() == len(decoder.cached_tokens)  # the cache and our view agree


def test_the_cost_curve_is_measured_only_for_a_call_that_drafts_and_then_learns_from_calls(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    import llama_cpp
    from turnout.runtimes.local.speculative import LocalSpeculation

    model_file = models.resolve(MODEL)
    # A Llama of its own: the module's is shared by decoders whose sequences it still holds.
    llm = llama_cpp.Llama(model_path=str(model_file), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path))  # where the curve is cached
    spec = LocalSpeculation(llm, model_path=model_file, n_threads=2,
                            n_gpu_layers=0, draft_model="", calibrate=True)
    ask = [{"role": "user", "content": "Write a Python function that adds two numbers."}]
    spec.complete(ask, max_tokens=16, temperature=0.0, seed=0, drafter="none")
    assert not list(tmp_path.rglob("*.json"))  # nothing drafted: nothing measured

    code = "def add(a, b):\n    return a + b\n" * 6
    repeat = [{"role": "user", "content": f"Repeat this code exactly:\n{code}"}]
    spec.complete(repeat, max_tokens=96, temperature=0.0, seed=0, drafter="suffix")
    [cached] = tmp_path.rglob("*.json")
    assert CostCurve.model_validate_json(cached.read_text()).ratios[1] == 1.0

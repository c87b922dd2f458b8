"""The in-process runtime on a real GGUF: the tiny SmolLM2-135M, installed by `make test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.runtimes.base import ChatRequest, Message, ToolCall, ToolSpec
from turnout.runtimes.local import models
from turnout.runtimes.local.llama_cpp import CHECK_CALLS_BELOW, LlamaCppConfig, LlamaCppModel
from turnout.runtimes.textprotocol.render import to_text_protocol

pytestmark = pytest.mark.model

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file.",
    input_schema={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


@pytest.fixture(scope="module")
def tiny() -> LlamaCppModel:
    if not models.is_installed(models.TEST_MODEL):
        pytest.fail(f"run `turnout models install {models.TEST_MODEL}` (make test does it)")
    return LlamaCppModel(LlamaCppConfig(model=models.TEST_MODEL, n_ctx=2048, n_threads=2))


def test_a_real_gguf_answers_with_usage_and_generation_stats(tiny: LlamaCppModel) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="Say hello in one word.")], max_tokens=16
    )
    response = tiny.chat(request)

    assert response.raw_text.strip()
    assert response.model == "llama_cpp:smollm2-135m"
    assert response.usage.prompt_tokens > 5 and 0 < response.usage.completion_tokens <= 16
    assert response.stats.prompt_tokens == response.usage.prompt_tokens
    assert response.stats.decode_tps > 0 and response.stats.prefill_seconds > 0


def test_greedy_decoding_is_reproducible_and_reuses_the_cached_prompt(tiny: LlamaCppModel) -> None:
    request = ChatRequest(
        messages=[Message(role="user", content="List three colours.")], max_tokens=24
    )
    first = tiny.chat(request)
    second = tiny.chat(request)

    assert first.raw_text == second.raw_text
    assert second.stats.cached_prompt_tokens > 0


def test_the_next_agent_turn_reuses_the_whole_previous_prompt_from_the_cache(tiny: LlamaCppModel) -> None:
    # On a CPU a cold prompt of a few thousand tokens takes minutes (bench context): the text
    # protocol must only ever append, so each step evaluates just the new call and result.
    messages = [
        Message(role="system", content="You fix bugs with the tools."),
        Message(role="user", content="Read calc.py."),
    ]
    first = tiny.chat(ChatRequest(messages=messages, tools=[READ_FILE], max_tokens=24))
    call = ToolCall(id="c1", name="read_file", arguments={"path": "calc.py"})
    messages += [
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", tool_call_id="c1", name="read_file", content="def add(a, b):\n    return a - b\n"),
    ]
    second = tiny.chat(ChatRequest(messages=messages, tools=[READ_FILE], max_tokens=8))

    assert second.stats.cached_prompt_tokens >= first.stats.prompt_tokens
    assert second.stats.prompt_tokens > second.stats.cached_prompt_tokens


def test_a_long_prompt_is_reported_while_it_is_read_and_a_cached_one_is_not() -> None:
    lines: list[str] = []
    model = LlamaCppModel(
        LlamaCppConfig(
            model=models.TEST_MODEL, n_ctx=2048, n_threads=2, calibrate=False, progress_min_tokens=600
        ),
        progress=lines.append,
    )
    words = " ".join(f"item{i}" for i in range(230))  # two of llama.cpp's 512-token batches
    request = ChatRequest(messages=[Message(role="user", content=f"Count these: {words}")], max_tokens=2)
    first = model.chat(request)
    evaluated = first.stats.prompt_tokens - first.stats.cached_prompt_tokens

    assert evaluated > 600
    assert lines[0] == f"reading a {first.stats.prompt_tokens:,}-token prompt ({evaluated:,} new, 0 from the cache) ..."
    assert lines[-1].startswith(f"read {evaluated:,} prompt tokens in ")
    lines.clear()
    model.chat(request)  # the same prompt again: the cache holds it, nothing to report
    assert lines == []


def test_tool_calls_in_the_reply_are_parsed_against_the_offered_tools(
    tiny: LlamaCppModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the model emits is up to a 135M model; what turnout makes of a reply is not.
    emitted = '```json\n{"name": "read_file", "arguments": {"path": "calc.py"}}\n```'
    # The reply is injected at llama-cpp-python's create_chat_completion, which only the
    # library path ("off") calls; turnout's own decode loop is the default.
    monkeypatch.setattr(tiny.config, "drafter", "off")
    original = tiny._llm.create_chat_completion

    def fake_completion(**kwargs: object) -> dict:
        result = original(**kwargs)
        result["choices"][0]["message"]["content"] = emitted
        return result

    monkeypatch.setattr(tiny._llm, "create_chat_completion", fake_completion)
    response = tiny.chat(
        ChatRequest(messages=[Message(role="user", content="Read calc.py")], tools=[READ_FILE], max_tokens=8)
    )
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("read_file", {"path": "calc.py"})]


def test_the_text_protocol_replays_calls_and_results_as_the_model_emits_them() -> None:
    from turnout.runtimes.base import ToolCall

    rendered = to_text_protocol(
        [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Read calc.py"),
            Message(role="assistant", tool_calls=[ToolCall(id="c1", name="read_file", arguments={"path": "calc.py"})]),
            Message(role="tool", name="read_file", tool_call_id="c1", content="def f(): ..."),
            Message(role="user", content="Now fix it."),
        ],
        [READ_FILE],
    )
    assert [m["role"] for m in rendered] == ["system", "user", "assistant", "user"]
    assert "read_file(path: string)" in rendered[0]["content"]
    assert json.loads(rendered[2]["content"].strip("`\njson")) == {"name": "read_file", "arguments": {"path": "calc.py"}}
    assert rendered[3]["content"].startswith("Result of read_file:\ndef f(): ...")
    assert rendered[3]["content"].endswith("Now fix it.")


def test_turnout_run_json_on_the_tiny_model_prints_one_report_object(
    calc_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "make the tests pass", "--repo", str(calc_repo), "--model", models.TEST_MODEL,
                 "--max-steps", "1", "--threads", "2", "--json"])
    report = json.loads(capsys.readouterr().out)

    assert code == (0 if report["tests_passed"] else 1)
    assert {"exit_status", "steps", "tests_passed", "files_changed", "tokens"} <= report.keys()
    assert report["steps"] == 1 and report["tokens"]["total"] > 0, report["error"]
    assert report["tests_before"]["passed"] is False
    # The model's own time (prefill and decode, as the runtime measured it) is part of the wall time.
    assert 0 < report["model_seconds"] <= report["wall_seconds"]
    assert 0 <= report["tokens"]["cached_prompt"] < report["tokens"]["prompt"]



def test_under_auto_the_model_checks_a_call_it_makes_and_a_doubted_one_becomes_words(
    tiny: LlamaCppModel,
) -> None:
    ask = [Message(role="user", content="Read calc.py")]
    request = ChatRequest(messages=ask, tools=[READ_FILE], tool_choice="auto", max_tokens=80, drafter="none")
    shown: list[str] = []
    try:
        tiny.config.check_calls_below = 0.0  # asked, never acted on
        asked = tiny.chat(request)
        tiny.config.check_calls_below = 1.0  # every Yes is below: the reply is words
        declined = tiny.chat(request.model_copy(update={"on_text": shown.append}))
        tiny.config.check_calls_below = None  # never asked
        unasked = tiny.chat(request)
    finally:
        tiny.config.check_calls_below = CHECK_CALLS_BELOW
    assert asked.tool_calls, asked.raw_text  # a call to check
    check = asked.stats.call_check
    assert check is not None and 0.0 <= check <= 1.0 and not asked.stats.declined_call
    assert declined.stats.declined_call and declined.tool_calls == [] and declined.problems == []
    assert "```" not in declined.raw_text and declined.stats.call_check == pytest.approx(check, abs=1e-6)
    assert declined.raw_text in "".join(shown)  # the words were streamed, after the hidden call
    assert declined.usage.completion_tokens > asked.usage.completion_tokens  # both replies count
    assert unasked.stats.call_check is None and unasked.tool_calls

    # Not checked: a call under `required`, or one that carries on after a tool's result.
    forced = tiny.chat(request.model_copy(update={"tool_choice": "required"}))
    assert forced.stats.call_check is None and forced.tool_calls
    result = [*ask, Message(role="assistant", tool_calls=asked.tool_calls),
              Message(role="tool", name="read_file", tool_call_id=asked.tool_calls[0].id, content="def add(a, b): ...")]
    going_on = tiny.chat(request.model_copy(update={"messages": result}))
    assert going_on.stats.call_check is None


def test_a_new_process_reads_a_prompt_it_shares_from_disk_and_never_trusts_a_damaged_state(
    tmp_path: Path,
) -> None:
    # A model instance is a process's runtime: a fresh one has an empty KV cache, as the next
    # `turnout run` does. Its prompt begins like the first one's (same system prompt and tools).
    store = tmp_path / "kv"
    config = LlamaCppConfig(model=models.TEST_MODEL, n_ctx=2048, n_threads=2, prefix_cache=store)
    system = Message(role="system", content="You are a careful assistant. " + "Rules: be brief. " * 60)
    ask = lambda words: ChatRequest(messages=[system, Message(role="user", content=words)], max_tokens=8)

    cold = LlamaCppModel(config).chat(ask("Name a colour."))
    files = list(store.glob("*.kv"))
    assert cold.stats.disk_prompt_tokens == 0 and len(files) == 1
    assert oct(files[0].stat().st_mode & 0o777) == "0o600" and oct(store.stat().st_mode & 0o777) == "0o700"

    warm = LlamaCppModel(config).chat(ask("Name a fruit."))  # shares the system part only
    assert 128 < warm.stats.disk_prompt_tokens < warm.stats.prompt_tokens
    assert warm.stats.cached_prompt_tokens == warm.stats.disk_prompt_tokens
    again = LlamaCppModel(config).chat(ask("Name a colour."))  # the first prompt whole
    assert again.stats.disk_prompt_tokens == again.stats.prompt_tokens - 1  # its last token re-read
    assert again.raw_text == cold.raw_text

    # A damaged state (one payload byte flipped) is removed, the prompt read in full, and the
    # state written again; a file of another model is never loaded.
    for path in store.glob("*.kv"):
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF
        path.write_bytes(bytes(data))
    other = LlamaCppConfig(model=models.TEST_MODEL, n_ctx=2048, n_threads=2, prefix_cache=store,
                           flash_attn=True)
    assert LlamaCppModel(other).chat(ask("Name a colour.")).stats.disk_prompt_tokens == 0
    damaged = LlamaCppModel(config).chat(ask("Name a colour."))
    assert damaged.stats.disk_prompt_tokens == 0 and damaged.raw_text == cold.raw_text
    assert LlamaCppModel(config).chat(ask("Name a colour.")).stats.disk_prompt_tokens > 128

"""The composition root: one model-spec grammar for every command, errors that say what was
wrong and how to fix it, and the one place a target becomes a model."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest
from turnout.agent import compose
from turnout.agent.cli.main import build_parser
from turnout.agent.compose import build_targets, open_local_model, open_model, target_for
from turnout.router.policy import TargetConfig, parse_policy
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.remote.registry import make_runtime
from turnout.runtimes.testing.fake import ScriptedModel

OLLAMA = {"OLLAMA_HOST": "10.0.0.5:11434"}


@pytest.mark.parametrize(
    ("spec", "runtime", "location", "model", "base_url"),
    [
        ("qwen2.5-coder-1.5b", "llama_cpp", "local", "qwen2.5-coder-1.5b", None),
        ("smollm2-135m", "llama_cpp", "local", "smollm2-135m", None),
        ("local", "llama_cpp", "local", models.DEFAULT_MODEL, None),
        ("local:", "llama_cpp", "local", models.DEFAULT_MODEL, None),
        ("local:smollm2-135m", "llama_cpp", "local", "smollm2-135m", None),
        ("broken.gguf", "llama_cpp", "local", "broken.gguf", None),
        ("~/models/x.gguf", "llama_cpp", "local", "~/models/x.gguf", None),
        ("ollama/qwen2.5-coder:1.5b", "openai_compat", "onprem", "qwen2.5-coder:1.5b", "http://10.0.0.5:11434/v1"),
        ("http://127.0.0.1:8080/v1#qwen", "openai_compat", "local", "qwen", "http://127.0.0.1:8080/v1"),
        ("http://localhost:8080/v1/#qwen", "openai_compat", "local", "qwen", "http://localhost:8080/v1"),
        ("https://llm.example.com/v1#m", "openai_compat", "cloud", "m", "https://llm.example.com/v1"),
        ("openai/gpt-4.1-mini", "openai", "cloud", "gpt-4.1-mini", None),
        ("anthropic/claude-sonnet-4", "anthropic", "cloud", "claude-sonnet-4", None),
    ],
)
def test_every_form_of_the_grammar_names_its_runtime_location_and_model(
    spec: str, runtime: str, location: str, model: str, base_url: str | None
) -> None:
    target = target_for(spec, environ=OLLAMA)
    assert (target.runtime, target.location, target.model, target.base_url) == (
        runtime, location, model, base_url,
    )


def test_a_path_to_a_model_file_is_the_in_process_model_whatever_its_name(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"")
    target = target_for(str(weights))
    assert (target.runtime, target.model) == ("llama_cpp", str(weights))


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", r"--model is empty; name a model: NAME \(a catalog model\), local"),
        ("llama3", r"'llama3' is not a model .* not in the catalog .*for an Ollama model: ollama/llama3"),
        ("ollama/", r"ollama/ needs the model's name: ollama/NAME"),
        ("openai/", r"openai/ needs the provider's model id: openai/MODEL"),
        ("anthropic/", r"anthropic/ needs the provider's model id: anthropic/MODEL"),
        ("http://#m", r"has no host; write it as http://HOST:PORT/v1\[#MODEL\]"),
        ("olama/llama3", r"no such file, and 'olama/' is not a prefix turnout knows; use NAME"),
    ],
)
def test_a_bad_spec_says_what_was_wrong_and_which_forms_work(spec: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        target_for(spec)


def test_every_command_takes_the_same_grammar_and_its_help_shows_it() -> None:
    parser = build_parser()
    for command in (["run"], ["chat"], ["eval", "toolcalls"]):
        args = [*command, "fix it"] if command == ["run"] else command
        assert parser.parse_args([*args, "--model", "ollama/llama3"]).model == "ollama/llama3"
        help_text = next(a.help for a in _subparser(parser, command)._actions if a.dest == "model")
        assert compose.MODEL_FORMS in help_text


def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_a_run_refuses_a_model_off_the_machine_and_says_how_to_declare_it() -> None:
    with pytest.raises(UsageError, match=r"runs off this machine \(cloud\).*declare it in turnout.toml"):
        open_local_model("https://llm.example.com/v1#m")


def test_a_local_target_without_an_in_process_model_sits_the_session_out() -> None:
    policy = parse_policy({"targets": {"here": {"runtime": "llama_cpp", "location": "local"}}}, "turnout.toml")
    built, unavailable = build_targets(policy, None)
    assert built == {} and "no in-process model" in unavailable["here"]
    local = ScriptedModel(["ok"])
    built, unavailable = build_targets(policy, local)
    assert unavailable == {} and built["here"].name == "here"


def test_a_networked_target_is_built_with_the_name_it_is_given() -> None:
    target = TargetConfig(runtime="openai_compat", location="local", model="m", base_url="http://127.0.0.1:9/v1")
    assert open_model(target, name="box").name == "box"
    assert open_model("http://127.0.0.1:9/v1#m").name == "http://127.0.0.1:9/v1#m"


def test_the_networked_registry_leaves_the_in_process_model_to_the_composition_root() -> None:
    target = TargetConfig(runtime="llama_cpp", location="local", model=models.TEST_MODEL)
    with pytest.raises(UsageError, match="in-process model.*compose.open_model"):
        make_runtime("local", target)


@pytest.mark.model
def test_a_llama_cpp_target_is_built_as_the_in_process_runtime() -> None:
    target = TargetConfig(
        runtime="llama_cpp", location="local", model=models.TEST_MODEL, context_window=1024
    )
    model = open_model(target, name="local")
    assert model.name == "llama_cpp:smollm2-135m" and model.config.n_ctx == 1024  # type: ignore[attr-defined]


def test_a_url_whose_server_is_down_says_to_start_it_or_name_the_model() -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UsageError, match=r"could not list the models.*is the server running\? Name the model"):
        target_for(f"http://127.0.0.1:{port}/v1")

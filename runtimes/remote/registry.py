"""Build a runtime from a target's settings: the one place that reads API keys from the environment.

Provides `TargetSettings` (the shape a target's config must have; the router's `TargetConfig`
in `router/policy.py` has it, and this module does not import the router, since imports go
`runtimes` <- `router`), `api_key_for`, `base_url_for` and `make_runtime`.

Keys and base URLs are read here, at the edge, and handed to the runtimes as values: first the
variable the target names in `api_key_env`, else `TURNOUT_<PROVIDER>_API_KEY`, else the
provider's own (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`). A policy file names variables, never keys.

The composition root (`agent/compose.py`) builds one `RunBudget` per run and passes it to every
`make_runtime` of that run, so the token and cost limits hold across targets; each runtime gets
its own `CircuitBreaker`. The in-process `llama_cpp` runtime is not built here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from turnout.runtimes.base import ChatModel
from turnout.runtimes.errors import UsageError
from turnout.runtimes.remote.retry import CircuitBreaker, Pricing, RetryPolicy, RunBudget

__all__ = ["TargetSettings", "api_key_for", "base_url_for", "make_runtime"]

PROVIDER_ENV = {"openai": "OPENAI", "anthropic": "ANTHROPIC"}
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


class TargetSettings(Protocol):
    """What `make_runtime` reads from a target (`router.policy.TargetConfig` fits)."""

    runtime: str  # "llama_cpp", "openai", "anthropic" or "openai_compat"
    location: str  # "local", "onprem" or "cloud"
    model: str
    base_url: str | None
    api_key_env: str | None
    context_window: int
    timeout_s: float
    max_attempts: int
    cost_per_mtok_input: float
    cost_per_mtok_output: float


def make_runtime(
    name: str,
    target: TargetSettings,
    *,
    budget: RunBudget | None = None,
    breaker: CircuitBreaker | None = None,
    retry: RetryPolicy | None = None,
    logger: Any | None = None,
    environ: Mapping[str, str] | None = None,
) -> ChatModel:
    """The `ChatModel` for target `name`. `retry` overrides the policy built from the target's
    `max_attempts` and `timeout_s` (tests use it for short waits)."""
    env = os.environ if environ is None else environ
    policy = retry or RetryPolicy(max_attempts=target.max_attempts, timeout_s=target.timeout_s)
    pricing = Pricing(
        input_per_mtok=target.cost_per_mtok_input, output_per_mtok=target.cost_per_mtok_output
    )
    shared: dict[str, Any] = {
        "name": name,
        "breaker": breaker or CircuitBreaker(name),
        "budget": budget,
        "logger": logger,
    }
    if target.runtime == "openai":
        from turnout.runtimes.remote.openai_rt import OpenAIChatModel, OpenAIConfig

        config = OpenAIConfig(
            model=_model(name, target),
            base_url=base_url_for("openai", target, env),
            retry=policy,
            pricing=pricing,
        )
        return OpenAIChatModel(config, api_key=api_key_for(name, target, env), **shared)
    if target.runtime == "anthropic":
        from turnout.runtimes.remote.anthropic_rt import AnthropicChatModel, AnthropicConfig

        config_a = AnthropicConfig(
            model=_model(name, target),
            base_url=base_url_for("anthropic", target, env),
            retry=policy,
            pricing=pricing,
        )
        return AnthropicChatModel(config_a, api_key=api_key_for(name, target, env), **shared)
    if target.runtime == "openai_compat":
        from turnout.runtimes.remote.openai_compat import OpenAICompatConfig, OpenAICompatModel

        if not target.base_url:
            raise UsageError(
                f"target {name!r}: runtime openai_compat needs base_url, "
                "e.g. 'http://localhost:11434/v1' for Ollama"
            )
        config_c = OpenAICompatConfig(
            model=target.model or "default",  # single-model servers ignore the name
            base_url=target.base_url,
            location=target.location,  # type: ignore[arg-type]  # validated by the policy
            retry=policy,
            pricing=pricing,
        )
        key = _named_key(name, target, env) if target.api_key_env else None
        return OpenAICompatModel(config_c, api_key=key, **shared)
    if target.runtime == "llama_cpp":
        raise UsageError(
            f"target {name!r}: runtime llama_cpp is the in-process model, not a networked one; "
            "it is loaded once per process by the composition root (turnout.agent.compose.open_model)"
        )
    raise UsageError(
        f"target {name!r}: unknown runtime {target.runtime!r}; "
        "allowed: llama_cpp, openai, anthropic, openai_compat"
    )


def api_key_for(name: str, target: TargetSettings, environ: Mapping[str, str]) -> str:
    """A cloud target's key, from the environment; a UsageError naming the variable if unset."""
    if target.api_key_env:
        return _named_key(name, target, environ)
    provider = PROVIDER_ENV[target.runtime]
    for variable in (f"TURNOUT_{provider}_API_KEY", f"{provider}_API_KEY"):
        value = environ.get(variable, "").strip()
        if value:
            return value
    raise UsageError(
        f"target {name!r}: no API key; set {provider}_API_KEY (or TURNOUT_{provider}_API_KEY), "
        "or name another variable in the target's api_key_env"
    )


def base_url_for(provider: str, target: TargetSettings, environ: Mapping[str, str]) -> str:
    """The target's base_url, else TURNOUT_<PROVIDER>_BASE_URL, else <PROVIDER>_BASE_URL, else
    the provider's public API."""
    if target.base_url:
        return target.base_url
    prefix = PROVIDER_ENV[provider]
    for variable in (f"TURNOUT_{prefix}_BASE_URL", f"{prefix}_BASE_URL"):
        value = environ.get(variable, "").strip()
        if value:
            return value
    return DEFAULT_BASE_URLS[provider]


def _named_key(name: str, target: TargetSettings, environ: Mapping[str, str]) -> str:
    variable = target.api_key_env or ""
    value = environ.get(variable, "").strip()
    if not value:
        raise UsageError(
            f"target {name!r}: its api_key_env names {variable}, which is not set; "
            f"export {variable}=... before running"
        )
    return value


def _model(name: str, target: TargetSettings) -> str:
    if not target.model:
        raise UsageError(f"target {name!r}: set model, the provider's model id")
    return target.model

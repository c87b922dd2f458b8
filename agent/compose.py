"""The composition root: where a model spec or a policy's target becomes a `ChatModel`, and where
a session (that model behind the policy router, the MCP tools behind the approvals) is opened.
`turnout run`, `chat`, `eval` and `bench agent` build their models here and nowhere else.

Model specs, the `--model` of every command:

    NAME                        a catalog model, in process (`turnout models list`)
    local, local:NAME           the in-process runtime with the default model, or catalog NAME
    FILE.gguf, DIR/FILE         a GGUF file, in process (with a directory in it, any file name)
    ollama/NAME                 Ollama's OpenAI-compatible API ($OLLAMA_HOST, else localhost:11434)
    http(s)://HOST:PORT/v1[#M]  any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio);
                                without #M, the first model the server lists
    openai/MODEL                OpenAI's API; key from $OPENAI_API_KEY or $TURNOUT_OPENAI_API_KEY
    anthropic/MODEL             Anthropic's API; key from $ANTHROPIC_API_KEY or $TURNOUT_ANTHROPIC_API_KEY

The prefixed forms are read first: `openai/gpt-4o` is OpenAI's model even where a file of that
name exists. Where each runs decides what the policy lets it see: the in-process model and
Ollama are `local` on this machine; a URL (and Ollama's $OLLAMA_HOST) is `local` when its host
is a loopback address, `onprem` on a private address or a name only a private network resolves
(`gpu-box`, `llm.internal`), and `cloud` otherwise (a public name may be anyone's; declare a
server in turnout.toml with its location to say otherwise); the cloud APIs are `cloud`.

What the chosen model answers for:

- `turnout run` and `turnout bench agent`: the policy's local (`llama_cpp`) targets, so it must
  run on this machine; the policy's other targets stay as declared (`open_router`).
- `turnout chat`: it picks one of the repository policy's targets by name, or adds one, and
  comes first in every work class; without it, the policy's targets as declared (`chat_router`).
- `turnout eval toolcalls`: the model itself, with no router in front: the guards under test
  are the runtime's own.

`open_model` is the one place a runtime is constructed: the in-process llama.cpp model (loaded
once per process, standing in for every local target), or a networked runtime with its retry
layer, circuit breaker and the run's budget (`runtimes.remote.registry.make_runtime`, where API
keys are read). `build_targets` gives every target of a policy its model, the local one wrapped
in `Budgeted` so the run's token budget counts its replies too.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import os
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlparse

from pydantic import ValidationError
from turnout.agent.approvals import (
    ApprovalMode,
    ApprovalPolicy,
    Asker,
    GuardedHost,
    ToolPins,
    load_committed_pins,
    tool_pins_path,
    with_policy,
)
from turnout.agent.host import (
    McpHost,
    ServerSpec,
    builtin_servers,
    load_mcp_config,
    read_json_config,
)
from turnout.router.atrest import STATE_DIR
from turnout.router.audit import AuditLog, open_audit
from turnout.router.policy import Location, Policy, TargetConfig, load_policy
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models
from turnout.runtimes.local.llama_cpp import LlamaCppConfig, LlamaCppModel
from turnout.runtimes.remote.registry import make_runtime
from turnout.runtimes.remote.retry import Budgeted, BudgetPolicy, RunBudget

# The forms of a model spec, in one line, for error messages and the CLI's help.
MODEL_FORMS = (
    "NAME (a catalog model), local, local:NAME, FILE.gguf, ollama/NAME, "
    "http://HOST:PORT/v1[#MODEL], openai/MODEL or anthropic/MODEL"
)
CLOUD_PROVIDERS = ("openai", "anthropic")
Drafter = Literal["suffix", "draft-model", "none", "off"]
Progress = Callable[[str], None]
IN_PROCESS = "the model runs in this process"


# ----- model specs ------------------------------------------------------------------------------


def target_for(spec: str, environ: Mapping[str, str] | None = None) -> TargetConfig:
    """The target a `--model` spec names (see the module docstring). A URL without `#MODEL` asks
    the server for its models; nothing else touches the network."""
    env = os.environ if environ is None else environ
    if not spec.strip():
        raise UsageError(f"--model is empty; name a model: {MODEL_FORMS}")
    if spec == "local" or spec.startswith("local:"):
        name = spec.partition(":")[2] or models.DEFAULT_MODEL
        return TargetConfig(runtime="llama_cpp", location="local", model=name).located_by(IN_PROCESS)
    if spec.startswith("ollama/"):
        name = spec.removeprefix("ollama/")
        if not name:
            raise UsageError("--model ollama/ needs the model's name: ollama/NAME, e.g. ollama/qwen2.5-coder:1.5b")
        host = env.get("OLLAMA_HOST") or "http://localhost:11434"
        if "://" not in host:
            host = f"http://{host}"
        # Ollama runs where OLLAMA_HOST points: this machine, or another one.
        location, why = located(host)
        source = "OLLAMA_HOST" if env.get("OLLAMA_HOST") else "Ollama's default address"
        return TargetConfig(
            runtime="openai_compat", location=location, model=name,
            base_url=host.rstrip("/") + "/v1", timeout_s=600, max_attempts=2,
        ).located_by(f"{source}: {why}")
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        url = url.rstrip("/")
        if not urlparse(url).hostname:
            raise UsageError(f"--model {spec!r} has no host; write it as http://HOST:PORT/v1[#MODEL]")
        location, why = located(url)
        return TargetConfig(
            runtime="openai_compat", location=location, model=model or first_model(url),
            base_url=url, timeout_s=600, max_attempts=2,
        ).located_by(why)
    for provider in CLOUD_PROVIDERS:
        if spec.startswith(f"{provider}/"):
            model = spec.removeprefix(f"{provider}/")
            if not model:
                raise UsageError(f"--model {provider}/ needs the provider's model id: {provider}/MODEL")
            return TargetConfig(runtime=provider, location="cloud", model=model).located_by(
                f"{provider}'s API is a cloud provider's")
    if spec.endswith(".gguf") or spec in models.CATALOG:
        return TargetConfig(runtime="llama_cpp", location="local", model=spec).located_by(IN_PROCESS)
    if os.sep in spec or "/" in spec:
        if Path(spec).expanduser().is_file():
            return TargetConfig(runtime="llama_cpp", location="local", model=spec).located_by(IN_PROCESS)
        prefix = spec.split("/", 1)[0]
        raise UsageError(
            f"--model {spec!r}: no such file, and {prefix + '/'!r} is not a prefix turnout knows; "
            f"use {MODEL_FORMS}"
        )
    raise UsageError(
        f"--model {spec!r} is not a model turnout knows how to reach: it is not in the catalog "
        f"({', '.join(models.CATALOG)}); use {MODEL_FORMS} (for an Ollama model: ollama/{spec})"
    )


# Host names that only resolve inside a network: mDNS, home routers, RFC 8375, cloud VPCs.
_PRIVATE_SUFFIXES = (".local", ".lan", ".home", ".home.arpa", ".internal", ".intranet", ".corp")


def location_of(url: str) -> str:
    """Where a server at `url` runs, from its host alone: `local` on a loopback address;
    `onprem` on a private or link-local address or a name only a private network resolves
    (`gpu-box`, `llm.internal`); `cloud` anywhere else, since a public name may be anyone's.
    A policy that knows better declares the target's location itself."""
    return located(url)[0]


def located(url: str) -> tuple[Location, str]:
    """`location_of`, with the rule that decided it, in words."""
    host = (urlparse(url).hostname or "").rstrip(".").lower()
    if is_loopback(url):
        return "local", f"{host} is this machine (loopback)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            return "onprem", f"{host} is a bare host name, which only a private network resolves"
        if host.endswith(_PRIVATE_SUFFIXES):
            suffix = next(s for s in _PRIVATE_SUFFIXES if host.endswith(s))
            return "onprem", f"{host} ends in {suffix}, a private network's suffix"
        return "cloud", f"{host} is a public name, which may be anyone's machine"
    if address.is_private or address.is_link_local:
        return "onprem", f"{host} is a private network address"
    return "cloud", f"{host} is a public address"


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def first_model(base_url: str) -> str:
    """The first model an OpenAI-compatible server lists (GET /models)."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=10) as reply:
            listed = json.load(reply).get("data") or []
    except (OSError, ValueError) as exc:  # urllib's HTTP and connection errors are OSErrors
        raise UsageError(
            f"could not list the models of {base_url} ({exc}); is the server running? "
            f"Name the model with {base_url}#MODEL"
        ) from None
    if not listed:
        raise UsageError(f"{base_url} lists no models; name one with {base_url}#MODEL")
    return str(listed[0]["id"])


# ----- models -----------------------------------------------------------------------------------


def open_model(
    target: TargetConfig | str,
    *,
    name: str = "",
    threads: int | None = None,
    n_gpu_layers: int = 0,
    n_ctx: int | None = None,
    drafter: Drafter | None = None,
    calibrate: bool = True,
    progress: Progress | None = None,
    budget: RunBudget | None = None,
    logger: Any | None = None,
    environ: Mapping[str, str] | None = None,
    prefix_cache: Path | None = None,
) -> ChatModel:
    """The `ChatModel` for a target, or for a model spec. `name` names it in errors, logs and
    the budget (default: the spec, else the target's model).

    In process (`llama_cpp`): `threads` (None: all cores), `n_gpu_layers`, `n_ctx` (default: the
    target's context_window), `drafter` (default: the runtime's; "off" is llama-cpp-python's own
    decode), `calibrate` (measure the batch cost curve, else the built-in figures) and `progress`
    (lines about long prompt evaluations) and `prefix_cache` (the folder where prompt states
    are kept for the next process, see `runtimes/local/prefixcache.py`) configure the load (`build_targets` charges its replies
    to the run's budget). Over the network: the runtime with its retries and circuit breaker,
    checked against `budget`, logging to `logger`; the in-process options do not apply."""
    if isinstance(target, str):
        name = name or target
        target = target_for(target, environ)
    name = name or target.model
    if target.runtime == "llama_cpp":
        config = LlamaCppConfig(
            model=target.model or models.DEFAULT_MODEL,
            n_ctx=n_ctx or target.context_window,
            n_threads=threads,
            n_gpu_layers=n_gpu_layers,
            calibrate=calibrate,
            prefix_cache=prefix_cache,
            **({"drafter": drafter} if drafter else {}),
        )
        return LlamaCppModel(config, progress=progress)
    return make_runtime(name, target, budget=budget, logger=logger, environ=environ)


def prefix_cache_dir(repo: Path) -> Path:
    """Where the in-process model keeps the prompt states of runs and chats in `repo`: inside
    its private `.turnout`, since they hold the repository's code and the conversation, and
    one repository's prompts share their start with the next run's there, not elsewhere."""
    return repo / STATE_DIR / "kv"


def open_local_model(
    spec: str, *, threads: int | None = None, n_gpu_layers: int = 0, progress: Progress | None = None,
    lazy: bool = False, prefix_cache: Path | None = None,
) -> ChatModel:
    """The model that answers for a policy's local targets (`turnout run`, `bench agent`): in
    process, or a server on this machine. One off the machine is refused: the local targets are
    where data that may not leave it goes. `lazy`: loaded on its first request (`LazyModel`), so
    a run whose policy routes nothing to the local targets never loads it."""
    target = target_for(spec)
    if target.location != "local":
        raise UsageError(
            f"--model {spec} runs off this machine ({target.location}), and a run's --model answers "
            "for the policy's local targets; declare it in turnout.toml as a target of its own "
            f"([targets.NAME] with runtime {target.runtime!r} and its location) and the policy "
            "sends it what may leave the machine"
        )

    def load() -> ChatModel:
        return open_model(target, name=spec, threads=threads, n_gpu_layers=n_gpu_layers, progress=progress,
                          prefix_cache=prefix_cache)

    return LazyModel(spec, load, announce=progress) if lazy else load()


class LazyModel:
    """A model built on its first request: the in-process model takes seconds and gigabytes to
    load, and a policy may send every request of a run elsewhere. `announce` hears when it loads."""

    def __init__(self, name: str, load: Callable[[], ChatModel], announce: Progress | None = None) -> None:
        self.name = name
        self._load = load
        self._announce = announce
        self.model: ChatModel | None = None  # None until a request came

    def chat(self, request: ChatRequest) -> ChatResponse:
        if self.model is None:
            if self._announce:
                self._announce(f"loading {self.name} (the first request routed to it) ...")
            self.model = self._load()
        return self.model.chat(request)


def build_targets(
    policy: Policy,
    local: ChatModel | None,
    *,
    logger: Any | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, ChatModel], dict[str, str]]:
    """Models by target name, and why each target that is missing could not be built.

    One `RunBudget` (the policy's `[budgets]`) is shared by every target, local replies charged
    too; `local` answers for every `llama_cpp` target (one model is loaded per process). A
    target that cannot be built here, such as a cloud target without its key, is reported as
    unavailable rather than failing the run: the router skips it, so a run with no key still
    works on the local model."""
    budget = RunBudget(
        BudgetPolicy(
            max_tokens=policy.budgets.max_tokens_per_run,
            max_cost_usd=policy.budgets.max_cost_usd_per_run,
        )
    )
    built: dict[str, ChatModel] = {}
    unavailable: dict[str, str] = {}
    for name, target in policy.targets.items():
        if target.runtime == "llama_cpp":
            if local is None:
                unavailable[name] = "no in-process model is loaded in this session"
            else:
                built[name] = Budgeted(local, budget, name)
            continue
        try:
            built[name] = open_model(target, name=name, budget=budget, logger=logger, environ=environ)
        except UsageError as exc:  # a missing key or model id: this target sits the run out
            unavailable[name] = str(exc)
    return built, unavailable


def open_router(
    repo: Path,
    local: ChatModel,
    *,
    run_id: str = "",
    logger: Any | None = None,
    policy_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    audit_path: Path | None = None,
) -> PolicyRouter:
    """The router of one run in `repo`: its policy, its targets built (`local` answering for the
    local ones), its audit log open: `audit_path` (from the command line, anywhere), else the
    policy's `[audit] path`, which must stay inside the repository."""
    policy = load_policy(repo, policy_file)
    built, unavailable = build_targets(policy, local, logger=logger, environ=environ)
    audit = policy_audit(policy, audit_path or policy_audit_path(repo, policy), environ)
    return PolicyRouter(
        policy, built, repo=repo, run_id=run_id, logger=logger, audit=audit, unavailable=unavailable
    )


def policy_audit(policy: Policy, path: Path, environ: Mapping[str, str] | None = None) -> AuditLog | None:
    """The policy's audit log at `path` (None when the policy turns it off), shipping to its
    collector too when `[audit] http_url` names one."""
    if not policy.audit.enabled:
        return None
    env = os.environ if environ is None else environ
    token = env.get(policy.audit.http_token_env, "") if policy.audit.http_token_env else ""
    return open_audit(path, policy.audit.http_url, token)


def policy_audit_path(repo: Path, policy: Policy) -> Path:
    """The policy's audit path, refused if a symlink takes it out of the repository."""
    path = repo / policy.audit.path
    real, root = os.path.realpath(path), os.path.realpath(repo)
    if not real.startswith(root.rstrip("/") + "/"):
        raise UsageError(
            f"[audit] path {policy.audit.path!r} in {policy.source or 'the policy'} leads outside the "
            f"repository (to {real}); keep it inside, or give an absolute path on the command line"
        )
    return path


def chat_router(
    spec: str | None, repo: Path, *, audit_path: Path, logger: Any | None = None, progress: Progress | None = None
) -> PolicyRouter:
    """The router of a chat: the repository policy's targets under its labels. `spec` (the
    chat's --model) picks one of them by name, or adds the model it names as the target `chat`;
    that target comes first in every work class, and the policy still decides what may leave the
    machine (a request its labels keep off that target goes to the next one they allow). The
    policy's local (`llama_cpp`) targets are answered by the in-process model (`spec` when it
    names one, else the default), loaded on the first request routed to it; `progress` hears
    when it loads and about its long prompt evaluations."""
    policy = load_policy(repo)
    targets = dict(policy.targets)
    chosen = ""
    local_spec = "local"
    if spec and spec in targets:
        chosen = spec
    elif spec:
        chosen = "chat" if "chat" not in targets else "chat.model"
        targets[chosen] = target_for(spec)
        if targets[chosen].runtime == "llama_cpp":
            # A missing or broken file is said now, not at the first message (the model itself
            # loads on the first request routed to it).
            models.resolve(spec)
            local_spec = spec
    work = policy.work
    if chosen:
        work = work.model_copy(update={
            cls: [chosen, *(entry for entry in getattr(work, cls) if entry != chosen)]
            for cls in ("repetitive", "hard", "escalation")
        })
    policy = policy.model_copy(update={"targets": targets, "work": work})
    local = LazyModel(local_spec, lambda: open_model(target_for(local_spec), name=local_spec, progress=progress,
                                                     prefix_cache=prefix_cache_dir(repo)),
                      announce=progress)
    built, unavailable = build_targets(policy, local, logger=logger)
    if chosen in unavailable:
        raise UsageError(f"--model {spec}: {unavailable[chosen]}")
    # A repository with a policy keeps the chat's audit where it keeps its runs'; without one,
    # the chat's own file in the user's cache (a chat does not write into every directory).
    audit = policy_audit(policy, policy_audit_path(repo, policy) if policy.source else audit_path)
    return PolicyRouter(policy, built, repo=repo, logger=logger, audit=audit, unavailable=unavailable)


# ----- sessions ---------------------------------------------------------------------------------


@dataclass
class Session:
    """What one session talks to: the model behind the policy router, the tools behind the
    approvals and pins (`tools` over `host`)."""

    model: PolicyRouter
    tools: GuardedHost
    host: McpHost


@contextlib.contextmanager
def open_session(
    repo: Path,
    model: PolicyRouter,
    servers: Sequence[ServerSpec],
    approvals: ApprovalPolicy,
    *,
    errlog: TextIO,
    asker: Asker | None = None,
    notify: Progress = lambda _: None,
    strict: bool = True,
) -> Iterator[Session]:
    """Start the MCP servers (confined to `repo`; their stderr to `errlog`) and guard them with
    the approvals, asking `asker` where a call needs a person (None: refused) and telling
    `notify` what the guard did. `strict`: a server that does not start fails the session;
    otherwise it is left out (`host.failed_servers()` says why)."""
    with McpHost(list(servers), errlog=errlog, roots=[repo], strict=strict) as host:
        pins = ToolPins(tool_pins_path(), committed=load_committed_pins(repo))
        tools = GuardedHost(host, approvals, pins=pins, asker=asker, notify=notify)
        yield Session(model=model, tools=tools, host=host)


def approvals_of(path: Path, data: Any) -> ApprovalPolicy:
    """The `approvals` object of an mcpServers file; a UsageError naming each wrong key, the
    value given and what it accepts."""
    if isinstance(data, dict):
        for key in data:
            if key not in ApprovalPolicy.model_fields:
                near = difflib.get_close_matches(str(key), list(ApprovalPolicy.model_fields), n=1)
                fix = f"did you mean {near[0]!r}?" if near else "it takes 'mode' and 'tools'"
                raise UsageError(f"{path}: approvals has the unknown key {key!r}; {fix}")
    try:
        return ApprovalPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            "approvals" + "".join(f".{part}" for part in error["loc"])
            + f": {error['msg']}" + (f", not {error['input']!r}" if error["loc"] else "")
            for error in exc.errors()
        )
        raise UsageError(f"{path}: {problems}") from None


def chat_tools(
    repo: Path, mcp_files: Sequence[Path], *, builtin_tools: bool, approval_mode: ApprovalMode | None
) -> tuple[list[ServerSpec], ApprovalPolicy]:
    """A chat's servers and approvals: turnout's own (files, edit, tests, git) unless
    `builtin_tools` is off, plus every server of each mcpServers file (`REPO/.mcp.json` when none
    is given); the approvals of the last file that has them, under the repository policy's
    `[approvals]`, under `approval_mode`."""
    files = list(mcp_files)
    if not files and (repo / ".mcp.json").is_file():
        files = [repo / ".mcp.json"]
    configured: list[ServerSpec] = []
    approvals = ApprovalPolicy()
    for path in files:
        configured += load_mcp_config(path)
        data = read_json_config(path)
        if isinstance(data, dict) and "approvals" in data:
            approvals = approvals_of(path, data["approvals"])
    # A configured server named like one of ours replaces it: the user's file has the last word.
    names = {spec.name for spec in configured}
    builtins = builtin_servers(repo, git=True) if builtin_tools else []
    servers = [spec for spec in builtins if spec.name not in names] + configured
    rules = load_policy(repo).approvals  # the repository's policy comes before the user's file
    return servers, with_policy(approvals, rules.mode, rules.tools, approval_mode)

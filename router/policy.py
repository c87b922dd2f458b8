"""The routing policy: which targets exist, which data labels may go where, and the run's limits.

A policy is read from `turnout.toml` at the repository root, or from `[tool.turnout]` in its
`pyproject.toml`; with neither, the default policy keeps everything on this machine (one target,
`local`, the in-process model). Every field is validated here, before any request is routed: a
policy error names the key (`labels.customers.allow_locations[0]`) and what is allowed.

Vocabulary:

- a *target* is a named model with a runtime and a location: `local` (in process or on this
  machine), `onprem` (a server the team runs) or `cloud` (a provider's API);
- a *label* is a kind of data: the built-in `secret` and `pii` (found by the scanner), or one of
  the policy's own, found by path globs (content read from those files) and regular expressions;
  each label says which locations and which named targets may receive content that carries it;
- *work classes* (`repetitive`, `hard`, `escalation`) order the allowed targets by preference.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from turnout.router.patterns import check_pattern
from turnout.runtimes.errors import PolicyError

Location = Literal["local", "onprem", "cloud"]
RuntimeName = Literal["llama_cpp", "openai", "anthropic", "openai_compat"]
WorkClass = Literal["repetitive", "hard", "escalation"]

LOCATIONS: tuple[Location, ...] = ("local", "onprem", "cloud")
SECRET = "secret"
PII = "pii"
POLICY_FILE = "turnout.toml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class TargetConfig(_Strict):
    """A model requests can be sent to."""

    runtime: RuntimeName = Field(description="which runtime talks to it")
    location: Location = Field(description="local (this machine), onprem (the team's) or cloud")
    model: str = Field(default="", description="model id at the provider, or catalog name / .gguf")
    base_url: str | None = Field(default=None, description="API root, for openai_compat (and proxies)")
    api_key_env: str | None = Field(
        default=None, description="environment variable that holds the key (never the key itself)"
    )
    context_window: int = Field(default=8192, gt=0, description="tokens the model accepts")
    timeout_s: float = Field(default=60.0, gt=0, description="per upstream attempt")
    max_attempts: int = Field(default=3, ge=1, le=10, description="upstream attempts per request")
    cost_per_mtok_input: float = Field(default=0.0, ge=0, description="USD per million prompt tokens")
    cost_per_mtok_output: float = Field(default=0.0, ge=0, description="USD per million completion tokens")
    # Why `location` is what it is when turnout worked it out from a `--model` spec rather than
    # a policy declaring it ("a private address", "OLLAMA_HOST is ..."): `explain` and `/route`
    # say it. Not a setting, so not a field a policy file could set.
    _location_rule: str = PrivateAttr(default="")

    @property
    def location_rule(self) -> str:
        return self._location_rule or "declared by the policy"

    def located_by(self, rule: str) -> TargetConfig:
        self._location_rule = rule
        return self

    @model_validator(mode="after")
    def _runtime_fits_location(self) -> TargetConfig:
        if self.runtime == "llama_cpp" and self.location != "local":
            raise ValueError(
                f"runtime llama_cpp runs in this process, so its location must be 'local', "
                f"not {self.location!r}"
            )
        if self.runtime in ("openai", "anthropic") and self.location != "cloud":
            raise ValueError(
                f"runtime {self.runtime} is a cloud provider's API, so its location must be 'cloud'; "
                f"for a server you run use runtime 'openai_compat' with location {self.location!r}"
            )
        if self.runtime == "openai_compat" and not self.base_url:
            raise ValueError("runtime openai_compat needs base_url, e.g. 'http://localhost:11434/v1'")
        if self.api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ValueError(
                f"api_key_env must name an environment variable (e.g. 'OPENAI_API_KEY'), "
                f"not {self.api_key_env!r}; never put the key itself in the policy"
            )
        return self


class LabelRule(_Strict):
    """A kind of data, how to recognise it, and who may receive it."""

    description: str = ""
    allow_locations: list[Location] = Field(
        default_factory=lambda: ["local"], description="locations that may receive it"
    )
    allow_targets: list[str] = Field(
        default_factory=list, description="named targets that may receive it, whatever their location"
    )
    paths: list[str] = Field(
        default_factory=list,
        description="globs, relative to the repo: content read from these files carries the label",
    )
    patterns: list[str] = Field(default_factory=list, description="regular expressions that carry it")

    @field_validator("paths")
    @classmethod
    def _globs_are_relative(cls, globs: list[str]) -> list[str]:
        for glob in globs:
            if not glob or glob.startswith("/") or "\\" in glob:
                raise ValueError(
                    f"path glob {glob!r} must be relative to the repository root with '/' "
                    "separators, e.g. 'secrets/**' or '*.env'"
                )
        return globs

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"pattern {pattern!r} matches the empty string, so it would match anything")
            hazard = check_pattern(pattern)
            if hazard:
                raise ValueError(hazard)
        return patterns


class WorkPreferences(_Strict):
    """For each work class, targets or locations in order of preference.

    Allowed targets are ordered by the first entry that names them (by name or location);
    targets no entry names come last, in the order the policy declares them.
    """

    repetitive: list[str] = Field(default_factory=lambda: ["local", "onprem", "cloud"])
    hard: list[str] = Field(default_factory=lambda: ["cloud", "onprem", "local"])
    escalation: list[str] = Field(default_factory=lambda: ["cloud", "onprem", "local"])


class Redaction(_Strict):
    """Secrets replaced by placeholders before a request leaves for a target the secret label
    does not allow; the placeholders are put back in the reply's tool-call arguments."""

    enabled: bool = False


class Budgets(_Strict):
    """Limits per run, over every target; a request that would pass them is refused."""

    max_tokens_per_run: int | None = Field(default=None, gt=0)
    max_cost_usd_per_run: float | None = Field(default=None, gt=0)


class AuditConfig(_Strict):
    """Where the audit log goes: one JSON line per routing decision, never the payload."""

    enabled: bool = True
    path: str = Field(
        default=".turnout/audit.jsonl",
        description="relative to the repository root, and inside it (an absolute path only on the command line)",
    )
    # A collector that receives each record too, as one JSON object per POST (Logstash, Vector,
    # Fluent Bit, an OpenTelemetry collector's HTTP receiver ...). Delivered in the background:
    # a collector that is down or slow never holds up a request; what could not be delivered
    # is counted, and the file keeps every record regardless.
    http_url: str = Field(default="", description="POST each record here as JSON (http:// or https://)")
    http_token_env: str = Field(
        default="", description="environment variable holding a bearer token for http_url (never the token itself)"
    )

    @field_validator("http_url")
    @classmethod
    def _a_url(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"http_url {url!r} must start with http:// or https://, e.g. 'https://logs.example.com/audit'")
        return url

    @field_validator("path")
    @classmethod
    def _inside_the_repository(cls, path: str) -> str:
        # A policy file travels with the repository; it must not make turnout write elsewhere.
        parts = path.replace("\\", "/").split("/")
        if not path.strip() or path.startswith(("/", "~")) or "\\" in path or ".." in parts or ":" in parts[0]:
            raise ValueError(
                f"audit path {path!r} must be a relative path inside the repository, e.g. "
                "'.turnout/audit.jsonl'; to write the audit log elsewhere, give an absolute path "
                "on the command line"
            )
        return path


class ApprovalsConfig(_Strict):
    """Which of a model's tool calls run without asking, for `turnout run` and `turnout chat`.

    `tools` maps globs over `server__tool` (or the bare name of turnout's own tools) to `allow`,
    `ask` or `deny`; these rules come before any in an mcpServers file, so a `deny` here holds
    in every mode. `mode` is the default when the command line names none.
    """

    mode: Literal["ask", "auto-edit", "full-auto"] | None = None
    tools: dict[str, Literal["allow", "ask", "deny"]] = Field(default_factory=dict)


class StateConfig(_Strict):
    """Where a run's graph state (its checkpoints) is kept. `sqlite` (the default) is
    `REPO/.turnout/checkpoints.sqlite`, on this machine only; `postgresql` is a PostgreSQL
    database a team shares, so a run started on one machine (or in CI) resumes on another
    checkout of the repository. Its URL is read from the environment variable `url_env` when a
    run opens the store: a policy file is committed, a URL holds a password."""

    checkpointer: Literal["sqlite", "postgresql"] = "sqlite"
    url_env: str = Field(default="TURNOUT_STATE_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("checkpointer", mode="before")
    @classmethod
    def _no_url_in_the_file(cls, value: object) -> object:
        if isinstance(value, str) and "://" in value:
            raise ValueError(
                "give checkpointer = 'postgresql' and put the URL in an environment variable named by "
                "url_env (default TURNOUT_STATE_URL), not in the policy file: the file is committed, "
                "the URL holds a password"
            )
        return value


def _default_targets() -> dict[str, TargetConfig]:
    return {"local": TargetConfig(runtime="llama_cpp", location="local")}


def _default_labels() -> dict[str, LabelRule]:
    return {
        SECRET: LabelRule(description="keys, tokens, passwords, private keys", allow_locations=["local"]),
        PII: LabelRule(description="personal data", allow_locations=["local", "onprem"]),
    }


class Policy(_Strict):
    """The whole policy. `Policy()` is the default: local only."""

    version: Literal[1] = 1
    targets: dict[str, TargetConfig] = Field(default_factory=_default_targets)
    labels: dict[str, LabelRule] = Field(default_factory=_default_labels)
    work: WorkPreferences = Field(default_factory=WorkPreferences)
    redaction: Redaction = Field(default_factory=Redaction)
    budgets: Budgets = Field(default_factory=Budgets)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    source: str = Field(default="", exclude=True, description="file it came from; empty = default")

    @field_validator("labels", mode="after")
    @classmethod
    def _builtin_labels_always_exist(cls, labels: dict[str, LabelRule]) -> dict[str, LabelRule]:
        # A policy that declares only its own labels must not open the door to secrets.
        merged = _default_labels()
        merged.update(labels)
        return merged

    @model_validator(mode="after")
    def _names_refer_to_something(self) -> Policy:
        if not self.targets:
            raise ValueError("targets: declare at least one target, e.g. [targets.local] runtime = 'llama_cpp'")
        for name in [*self.targets, *self.labels]:
            if not _NAME.match(name):
                raise ValueError(f"name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        for label, rule in self.labels.items():
            for target in rule.allow_targets:
                if target not in self.targets:
                    raise ValueError(
                        f"labels.{label}.allow_targets: no target named {target!r}; "
                        f"declared targets: {', '.join(self.targets)}"
                    )
        for work_class in ("repetitive", "hard", "escalation"):
            for entry in getattr(self.work, work_class):
                if entry not in self.targets and entry not in LOCATIONS:
                    raise ValueError(
                        f"work.{work_class}: {entry!r} is neither a target nor a location; "
                        f"allowed: {', '.join([*self.targets, *LOCATIONS])}"
                    )
        return self

    @property
    def is_default(self) -> bool:
        return not self.source


def find_policy_file(repo: Path) -> tuple[Path, bool] | None:
    """The policy file of a repository and whether it is a pyproject.toml, or None."""
    toml = repo / POLICY_FILE
    if toml.is_file():
        return toml, False
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        data = _read_toml(pyproject)
        if isinstance(data.get("tool"), dict) and "turnout" in data["tool"]:
            return pyproject, True
    return None


def load_policy(repo: Path, path: Path | None = None) -> Policy:
    """The policy for `repo`: an explicit file, else turnout.toml, else [tool.turnout], else the default."""
    if path is not None:
        if not path.is_file():
            raise PolicyError(f"policy file {path}: no such file")
        return parse_policy(_read_toml(path).get("tool", {}).get("turnout", {}) if path.name == "pyproject.toml"
                            else _read_toml(path), str(path))
    found = find_policy_file(repo)
    if found is None:
        return Policy()
    file, in_pyproject = found
    data = _read_toml(file)
    return parse_policy(data["tool"]["turnout"] if in_pyproject else data, str(file))


def parse_policy(data: dict[str, Any], source: str) -> Policy:
    """Validate raw TOML data; errors name each key that is wrong and what it accepts."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"  {_key(err['loc'])}: {_explain(err)}" if err["loc"] else f"  {_explain(err)}"
            for err in exc.errors()
        ]
        raise PolicyError(f"policy {source} is not valid:\n" + "\n".join(problems)) from None
    policy.source = source
    return policy


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PolicyError(
            f"policy file {path} is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"(line {line}); TOML files are UTF-8, save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise PolicyError(f"policy file {path} cannot be read: {exc.strerror}") from None


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part.startswith(("function-", "literal[")) or part in ("function-after",):
            continue
        else:
            key += f".{part}" if key else part
    return key or "(top level)"


def _explain(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the README's example policy"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{err['input']!r} is not allowed; allowed: {expected}"
    if kind == "missing":
        return "required, but missing"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")

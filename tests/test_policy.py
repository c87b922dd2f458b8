"""The policy file: where it is read from, what the default is, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.router.policy import load_policy
from turnout.runtimes.errors import PolicyError

EXAMPLE = """\
[targets.local]
runtime = "llama_cpp"
location = "local"

[targets.gpu-box]
runtime = "openai_compat"
location = "onprem"
base_url = "http://gpu-box:8000/v1"
model = "qwen2.5-coder-7b"
context_window = 32768

[targets.claude]
runtime = "anthropic"
location = "cloud"
model = "claude-sonnet-4-5"
context_window = 200000

[labels.customers]
paths = ["data/customers/**"]
patterns = ['CUST-\\d{6}']
allow_locations = ["local"]
allow_targets = ["gpu-box"]

[work]
hard = ["claude", "gpu-box", "local"]

[redaction]
enabled = true

[budgets]
max_cost_usd_per_run = 2.5
"""


def write(repo: Path, name: str, text: str) -> Path:
    path = repo / name
    path.write_text(text, encoding="utf-8")
    return path


def test_with_no_policy_file_the_default_keeps_everything_local(tmp_path: Path) -> None:
    policy = load_policy(tmp_path)
    assert policy.is_default
    assert {n: (t.runtime, t.location) for n, t in policy.targets.items()} == {"local": ("llama_cpp", "local")}
    assert policy.labels["secret"].allow_locations == ["local"]


def test_turnout_toml_is_read_and_the_builtin_labels_stay(tmp_path: Path) -> None:
    write(tmp_path, "turnout.toml", EXAMPLE)
    policy = load_policy(tmp_path)
    assert policy.source.endswith("turnout.toml")
    assert list(policy.targets) == ["local", "gpu-box", "claude"]
    assert policy.labels["customers"].allow_targets == ["gpu-box"]
    # Declaring your own labels does not drop the scanner's: secrets still stay local.
    assert policy.labels["secret"].allow_locations == ["local"]
    assert policy.redaction.enabled and policy.budgets.max_cost_usd_per_run == 2.5


def test_tool_turnout_in_pyproject_is_read_when_there_is_no_turnout_toml(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n\n[tool.turnout.targets.box]\n'
          'runtime = "openai_compat"\nlocation = "onprem"\nbase_url = "http://box/v1"\n')
    policy = load_policy(tmp_path)
    assert list(policy.targets) == ["box"] and policy.source.endswith("pyproject.toml")


def test_turnout_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.turnout.budgets]\nmax_tokens_per_run = 5\n')
    write(tmp_path, "turnout.toml", EXAMPLE)
    assert load_policy(tmp_path).budgets.max_tokens_per_run is None


def test_a_pyproject_without_tool_turnout_means_the_default(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n')
    assert load_policy(tmp_path).is_default


@pytest.mark.parametrize(
    ("toml", "named", "says"),
    [
        ('[targets.a]\nruntime = "llama_cpp"\nlocation = "local"\ncontxt_window = 5\n',
         "targets.a.contxt_window", "unknown key"),
        ('[labels.x]\nallow_locations = ["moon"]\n', "labels.x.allow_locations[0]", "'local', 'onprem' or 'cloud'"),
        ('[targets.a]\nruntime = "llamacpp"\nlocation = "local"\n', "targets.a.runtime", "'llama_cpp'"),
        ('[targets.a]\nruntime = "openai"\nlocation = "onprem"\n', "targets.a", "use runtime 'openai_compat'"),
        ('[targets.a]\nruntime = "openai_compat"\nlocation = "onprem"\n', "targets.a", "needs base_url"),
        ('[labels.x]\nallow_targets = ["gpt"]\n', "labels.x.allow_targets", "declared targets: local"),
        ('[labels.x]\npatterns = ["(unclosed"]\n', "labels.x.patterns", "not a valid regular expression"),
        ('[labels.x]\npaths = ["/etc/**"]\n', "labels.x.paths", "relative to the repository root"),
        ('[work]\nhard = ["gpt"]\n', "work.hard", "neither a target nor a location"),
        ('[targets.a]\nruntime = "openai"\nlocation = "cloud"\napi_key_env = "sk-abc123"\n',
         "targets.a", "never put the key itself"),
    ],
)
def test_an_invalid_policy_names_the_key_and_what_is_allowed(
    tmp_path: Path, toml: str, named: str, says: str
) -> None:
    write(tmp_path, "turnout.toml", toml)
    with pytest.raises(PolicyError) as error:
        load_policy(tmp_path)
    message = str(error.value)
    assert named in message and says in message and "turnout.toml" in message


def test_a_policy_that_is_not_toml_says_so(tmp_path: Path) -> None:
    write(tmp_path, "turnout.toml", "[targets\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(tmp_path)


def test_policy_check_prints_the_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "turnout.toml", EXAMPLE)
    assert main(["policy", "check", "--repo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "claude: anthropic claude-sonnet-4-5 (cloud" in out
    assert "customers: may go to local, target gpu-box; found by path data/customers/**" in out


def test_policy_check_on_a_bad_policy_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "turnout.toml", '[labels.x]\nallow_locations = ["moon"]\n')
    assert main(["policy", "check", "--repo", str(tmp_path)]) == 2
    assert "labels.x.allow_locations[0]" in capsys.readouterr().err


def test_the_readme_example_policy_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Routing policy"):]
    example = section[section.index("```toml\n") + len("```toml\n"):section.index("\n```\n")]
    write(tmp_path, "turnout.toml", example)
    policy = load_policy(tmp_path)
    assert list(policy.targets) == ["local", "gpu-box", "claude"]
    assert policy.labels["customers"].allow_targets == ["gpu-box"] and policy.redaction.enabled


def test_approvals_in_the_policy_are_read_and_checked(tmp_path: Path) -> None:
    write(tmp_path, "turnout.toml", '[approvals]\nmode = "auto-edit"\n\n[approvals.tools]\n"git__*" = "deny"\n')
    approvals = load_policy(tmp_path).approvals
    assert approvals.mode == "auto-edit" and approvals.tools == {"git__*": "deny"}

    write(tmp_path, "turnout.toml", '[approvals]\nmode = "yolo"\n')
    with pytest.raises(PolicyError, match=r"approvals\.mode.*ask.*auto-edit.*full-auto"):
        load_policy(tmp_path)


def test_the_policys_tool_rules_come_before_the_users_and_the_command_line_mode_wins() -> None:
    from turnout.agent.approvals import ApprovalPolicy, with_policy

    user = ApprovalPolicy(mode="ask", tools={"git__*": "allow", "fs__read_*": "allow"})
    merged = with_policy(user, "auto-edit", {"git__*": "deny"})
    assert merged.mode == "auto-edit"
    assert list(merged.tools.items()) == [("git__*", "deny"), ("fs__read_*", "allow")]
    assert with_policy(user, "auto-edit", {}, "full-auto").mode == "full-auto"
    assert with_policy(user, None, {}).mode == "ask"

"""`turnout doctor`: each check finds what is there, and a missing piece says what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from turnout.agent.cli import doctor as doctor_module
from turnout.agent.cli.main import main


def doctor(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, str]]]:
    code = main(["doctor", "--repo", str(repo), "--json"])
    return code, {c["name"]: c for c in json.loads(capsys.readouterr().out)}


def test_a_ready_repository_passes_and_the_wait_policy_is_named(
    calc_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor_module, "USER_OMP_WAIT_POLICY", None)
    code, checks = doctor(calc_repo, capsys)
    assert checks["tests"]["status"] == "ok" and checks["policy"]["status"] == "ok"
    assert checks["state"]["status"] == "ok" and "SQLite" in checks["state"]["detail"]
    # Unset: fastest for one process, and the line says what two processes at once need.
    assert checks["omp"]["status"] == "ok" and "export OMP_WAIT_POLICY=PASSIVE" in checks["omp"]["detail"]
    monkeypatch.setattr(doctor_module, "USER_OMP_WAIT_POLICY", "passive")
    assert "share the cores" in doctor(calc_repo, capsys)[1]["omp"]["detail"]
    assert code == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)


def test_what_is_missing_fails_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_MODELS_DIR", str(tmp_path / "no-models"))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "turnout.toml").write_text('version = 1\n[state]\ncheckpointer = "postgresql"\nurl_env = "NO_SUCH_URL_VAR"\n')
    monkeypatch.delenv("NO_SUCH_URL_VAR", raising=False)
    code, checks = doctor(repo, capsys)

    assert code == 1
    assert checks["models"]["status"] == "fail" and "turnout models install" in checks["models"]["detail"]
    assert checks["state"]["status"] == "fail" and "NO_SUCH_URL_VAR" in checks["state"]["detail"]
    assert checks["tests"]["status"] == "warn" and "--test-command" in checks["tests"]["detail"]

    (repo / "turnout.toml").write_text("version = 1\n[targets.x]\nruntime = 'nope'\n")
    code, checks = doctor(repo, capsys)
    assert checks["policy"]["status"] == "fail" and "runtime" in checks["policy"]["detail"]

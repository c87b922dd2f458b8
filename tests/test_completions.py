"""`turnout completions`: the script bash sources completes commands and flags from the parser."""

from __future__ import annotations

import functools
import subprocess
import sys


@functools.cache
def bash_script() -> str:
    return subprocess.run([sys.executable, "-m", "turnout.agent.cli", "completions", "bash"],
                          capture_output=True, text=True, check=True).stdout


def complete(words: list[str]) -> list[str]:
    script = bash_script()
    line = " ".join(words)
    probe = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
             f"COMP_POINT={len(line)}; _shtab_turnout; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completes_commands_flags_and_choices_from_the_parser() -> None:
    assert complete(["turnout", "ru"]) == ["run", "runs"]
    assert "--resume" in complete(["turnout", "run", "--res"])
    assert complete(["turnout", "run", "--approval-mode", "a"]) == ["ask", "auto-edit"]
    assert complete(["turnout", "completions", "z"]) == ["zsh"]

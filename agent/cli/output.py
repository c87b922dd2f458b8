"""What the commands print: progress lines on stderr, tables and reports on stdout.

The reports of `turnout run`, `policy check` and `explain` are rendered by their own modules
(`agent/run.py`, `router/explain.py`) and the benchmarks' by theirs; the tables here are the
ones the command line assembles itself.
"""

from __future__ import annotations

import sys
from typing import Any

from turnout.agent.evals.loops import LoopsReport
from turnout.agent.evals.toolcalls import ToolCallsReport


def say(text: str) -> None:
    """A progress line: stderr, so that stdout stays the command's output (`--json`)."""
    print(text, file=sys.stderr, flush=True)


def progress(line: str) -> None:
    say(f"turnout: {line}")


def models_table(models_dir: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"models in {models_dir}:"]
    for r in rows:
        mark = "installed" if r["installed"] else "not installed"
        star = " (default)" if r["default"] else ""
        lines.append(
            f"  {r['name']:<20} {r['size_bytes'] / 2**20:7.0f} MiB  {mark:<13}  {r['description']}{star}"
        )
    return "\n".join(lines)


def toolcalls_table(report: ToolCallsReport) -> str:
    lines = [
        f"BFCL single-turn, model {report.model}, tool_choice={report.tool_choice} (turnout targets)",
        f"  {'category':<14} {'target':<18} {'cases':>5} {'valid':>7} {'AST match':>9} {'median s':>8}",
    ]
    for s in report.summaries:
        lines.append(
            f"  {s.category:<14} {s.target:<18} {s.cases:>5} {s.valid_rate:>7.1%} "
            f"{s.ast_match_rate:>9.1%} {s.median_seconds:>8.2f}"
        )
    return "\n".join(lines)


def loops_report(report: LoopsReport) -> str:
    lines = [
        f"loop traces: {report.looping} looping, {report.healthy} healthy",
        (f"  looping caught: {report.caught}/{report.looping}, within 3 steps of the second cycle: "
        f"{report.caught_in_time}/{report.looping}, median steps to detect: "
        f"{report.median_steps_to_detect}"),
        (f"  healthy flagged (a nudge): {report.healthy_flagged}/{report.healthy}, "
        f"stopped: {report.healthy_stopped}/{report.healthy}"),
        (f"replies ({report.tokenizer}): {report.degenerate} degenerate, "
        f"{len(report.replies) - report.degenerate} healthy"),
        (f"  degenerate aborted: {report.degenerate_aborted}/{report.degenerate}, at most "
        f"{report.max_tokens_to_abort} tokens after the repetition began; healthy aborted: "
        f"{report.healthy_replies_aborted}"),
        "",
    ]
    for t in report.traces:
        where = (
            f"flagged at step {t.detected_at} ({', '.join(t.signals)}), +{t.steps_to_detect} "
            f"after the second cycle began"
            if t.looping and t.detected_at else
            (f"flagged at step {t.detected_at} ({', '.join(t.signals)})" if t.detected_at else "not flagged")
        )
        stop = f", stopped at {t.stopped_at}" if t.stopped_at else ""
        lines.append(f"  {'LOOP' if t.looping else 'ok  '} {t.name}: {where}{stop}")
    for r in report.replies:
        what = f"aborted {r.tokens_to_abort} tokens in" if r.tripped else "not aborted"
        lines.append(f"  {'DEGN' if r.degenerate else 'ok  '} reply {r.name}: {what} ({r.tokens} tokens)")
    return "\n".join(lines)

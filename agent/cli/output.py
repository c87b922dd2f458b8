"""What the commands print: progress lines on stderr, tables and reports on stdout.

On a terminal `turnout run` shows a live status line under its progress lines (`RunView`) and
colours the report's diff (`print_report`); into a pipe or a file, with `--no-color`, `NO_COLOR`
or `TERM=dumb`, every line is plain text, and `--json` output is never touched.

The reports of `turnout run`, `policy check` and `explain` are rendered by their own modules
(`agent/run.py`, `router/explain.py`) and the benchmarks' by theirs; the tables here are the
ones the command line assembles itself.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, Self, TextIO, TypeVar

import structlog
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from turnout.agent.evals.loops import LoopsReport
from turnout.agent.evals.toolcalls import ToolCallsReport
from turnout.agent.run import RunListing


def configure_logging() -> None:
    """Library loggers (the router's, the retry layer's) write to stderr, never stdout, which
    is the command's output (`--json`); below warnings only with TURNOUT_LOG=info or debug.
    Each run's events file has its own logger (`agent/run.py`) and is not affected."""
    floor = LEVELS.get(os.environ.get("TURNOUT_LOG", "warning").lower(), LEVELS["warning"])

    def drop_below_floor(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if LEVELS.get(method, LEVELS["warning"]) < floor:
            raise structlog.DropEvent
        return event

    structlog.configure(
        processors=[
            drop_below_floor,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        # Looked up at each write: sys.stderr may be replaced (tests, redirection) after this.
        logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50,
          "exception": 40, "msg": 20}


def say(text: str) -> None:
    """A progress line: stderr, so that stdout stays the command's output (`--json`)."""
    print(text, file=sys.stderr, flush=True)


def progress(line: str) -> None:
    say(f"turnout: {line}")


def color_wanted(stream: TextIO, no_color: bool = False) -> bool:
    """Colour and live lines only for a person at a terminal: never into a pipe or a file, nor
    with --no-color, NO_COLOR (no-color.org) or TERM=dumb."""
    if no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


# The first prefix that matches styles the line; "+++"/"---" before "+"/"-".
DIFF_STYLES = (("+++ ", "bold"), ("--- ", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def print_report(text: str, *, color: bool) -> None:
    """A report on stdout, its diff lines coloured when `color`."""
    if not color:
        print(text)
        return
    console = Console(file=sys.stdout, force_terminal=True, highlight=False, soft_wrap=True)
    for line in text.split("\n"):
        style = next((style for prefix, style in DIFF_STYLES if line.startswith(prefix)), "")
        console.print(Text(line, style=style))


T = TypeVar("T")
R = TypeVar("R")


class RunView:
    """`turnout run`'s progress on stderr. On a terminal each line prints above a live status
    line: what the run is doing, for how long, and the long prompt evaluation's time left; a
    question (an approval) pauses it. Elsewhere: plain `turnout: ...` lines, nothing redrawn."""

    def __init__(self, live: bool) -> None:
        self._console = Console(file=sys.stderr, force_terminal=True, highlight=False, soft_wrap=True) if live else None
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="cyan")
        self._doing = "loading the model"
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        if self._console is not None:
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def line(self, text: str) -> None:
        """A progress line; one about a prompt still being read goes to the status line only."""
        if self._console is None:
            progress(text)
        elif text.startswith("reading the prompt:"):
            self._doing = text
        else:
            self._console.print(Text("turnout: ", style="dim") + Text(text))

    def status(self, doing: str) -> None:
        self._doing = doing

    def pausing(self, ask: Callable[[T], R]) -> Callable[[T], R]:
        """`ask` with the live line stopped while it waits for an answer on the terminal."""

        def asked(request: T) -> R:
            if self._live is None:
                return ask(request)
            self._live.stop()
            try:
                return ask(request)
            finally:
                self._live.start()

        return asked

    def __rich__(self) -> Table:
        seconds = int(time.monotonic() - self._started)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(self._spinner, Text(f"{self._doing}  ", style="bold"),
                     Text(f"{seconds // 60}m{seconds % 60:02d}s", style="dim"))
        return grid


def models_table(models_dir: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"models in {models_dir}:"]
    for r in rows:
        mark = "installed" if r["installed"] else "not installed"
        star = " (default)" if r["default"] else ""
        lines.append(
            f"  {r['name']:<20} {r['size_bytes'] / 2**20:7.0f} MiB  {mark:<13}  {r['description']}{star}"
        )
    return "\n".join(lines)


def runs_table(repo: str, runs: list[RunListing]) -> str:
    if not runs:
        return f"no runs in {repo} yet; start one with `turnout run TASK`"
    lines = [f"  {'run':<22} {'started (UTC)':<19} {'status':<19} {'steps':>5}  files / task"]
    for r in runs:
        files = ", ".join(r.files_changed) + (" (undone)" if r.undone else "")
        task = r.task if len(r.task) <= 60 else r.task[:57] + "..."
        if r.elsewhere:  # only the shared store has it: `--resume` takes it on here
            task += f"  [in {r.elsewhere}]"
        lines.append(f"  {r.run_id:<22} {r.started[:19].replace('T', ' '):<19} {r.status:<19} "
                     f"{r.steps:>5}  {files + ': ' if files else ''}{task}")
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

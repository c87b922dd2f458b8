"""`turnout chat`: a terminal client that gives any model the tools of any MCP servers.

Tools: turnout's own servers on the current directory (files, edit, tests, git) unless
`--no-builtin-tools`, plus every server of each `--mcp FILE` (`mcpServers` JSON; `./.mcp.json`
when no file is given). The model is the repository policy's targets behind the policy router
(`--model` picks one of them first, or adds one), so the policy still decides what may leave
the machine, and the in-process model loads only when a request is routed to it; tool calls go
through the approvals, asked inline. The conversation is kept in the cache directory between sessions
(`/new` starts over); `--json` answers one prompt (from the arguments or stdin) with one JSON
object and keeps no history. The session itself is `agent/chat.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from turnout.agent import compose
from turnout.agent.approvals import MODES, decide, terminal_asker
from turnout.agent.chat import (
    ChatHistory,
    ChatSession,
    ChatSettings,
    TurnResult,
    UndoableTurns,
    history_file,
)
from turnout.agent.cli.args import DRAFTER_HELP, DRAFTERS
from turnout.agent.cli.chatview import LiveReply, line_reader, terminal_writer
from turnout.agent.cli.undo import render as render_undo
from turnout.agent.paths import cache_dir
from turnout.agent.run import RunInterrupted, render, run_logger, run_task, target_prices
from turnout.router.policy import TargetConfig
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import Message, Usage
from turnout.runtimes.errors import TurnoutError, UsageError
from turnout.runtimes.local import models

HELP = """\
/model [SPEC]    show the model, or switch to SPEC (local, ollama/NAME, http://HOST:PORT/v1, ...)
/tools           list the tools, by server, with what the approval policy does for each
/route           show where the last request went and why (the policy router's decision)
/approvals [M]   show the approval mode, or set it: ask, auto-edit, full-auto
/run TASK        do TASK as `turnout run` does: candidates verified by the tests on a
                 scratch copy, only a winner lands (the same model, tools and approvals)
/undo            put back the files the latest answer or /run of this session changed
/diff            what this session's answers changed, as a diff
/cost            tokens used in this session, and their price where the policy gives one
/new             start a new conversation (the old one is forgotten)
/help            this list
/quit            leave (Ctrl-D does too)"""
COMMANDS = [line.split()[0] for line in HELP.splitlines() if line.startswith("/")]  # for completion


def add_parser(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser(
        "chat",
        help="chat with a local or remote model that can use any MCP servers' tools",
        description="An interactive MCP client: the in-process model, Ollama, any "
        "OpenAI-compatible server or a cloud API, with turnout's tools and every server of "
        "the mcpServers JSON; tool calls validated, approvals asked inline, history kept.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout chat --model ollama/qwen2.5-coder:1.5b --mcp .mcp.json\n"
        "  turnout chat --model http://127.0.0.1:8080/v1 --json \"what changed in git?\"",
    )
    chat.add_argument("prompt", nargs="*", help="with --json: the prompt (default: read stdin)")
    chat.add_argument("--model", default=os.environ.get("TURNOUT_CHAT_MODEL"), metavar="SPEC",
                      help=f"one of the policy's targets by name, or a model to add to them: {compose.MODEL_FORMS} "
                      "(default: the policy's targets as declared; env TURNOUT_CHAT_MODEL)")
    chat.add_argument("--mcp", action="append", type=Path, default=[], metavar="FILE",
                      help="an mcpServers JSON file; repeatable (default: ./.mcp.json if present)")
    chat.add_argument("--no-builtin-tools", action="store_true",
                      help="leave out turnout's own files, edit, tests and git servers")
    chat.add_argument("--approval-mode", choices=MODES, default=None,
                      help="ask (default), auto-edit or full-auto; overrides the policy's "
                      "[approvals] mode and the mcpServers file's")
    chat.add_argument("--drafter", choices=DRAFTERS, default="suffix",
                      help=DRAFTER_HELP)
    chat.add_argument("--json", action="store_true",
                      help="answer one prompt non-interactively and print one JSON object")
    chat.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    repo = Path.cwd()
    servers, approvals = compose.chat_tools(
        repo, args.mcp, builtin_tools=not args.no_builtin_tools, approval_mode=args.approval_mode
    )
    chat_dir = cache_dir() / "chat"
    chat_dir.mkdir(parents=True, exist_ok=True)
    # --json writes its progress to stderr (stdout is the answer); the terminal session to stdout.
    out = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    def progress(line: str) -> None:
        say(f"turnout: {line}" if args.json else f"  ({line})")

    # The router's events (hashes and sizes, never payloads) as JSON lines; servers' stderr.
    with (
        (chat_dir / "events.jsonl").open("a", encoding="utf-8") as events,
        (chat_dir / "servers.log").open("a") as errlog,
    ):
        logger = run_logger(events, "chat")

        def router_for(spec: str | None) -> PolicyRouter:
            return compose.chat_router(
                spec, repo, audit_path=chat_dir / "audit.jsonl", logger=logger, progress=progress
            )

        if args.json:
            prompt = " ".join(args.prompt) if args.prompt else sys.stdin.read()
            if not prompt.strip():
                raise UsageError("turnout chat --json needs a prompt: as arguments or on stdin")
        router = router_for(args.model)
        with compose.open_session(
            repo, router, servers, approvals, errlog=errlog, strict=False,
            asker=None if args.json else terminal_asker, notify=lambda line: say(f"turnout: {line}"),
        ) as session:
            for name, why in session.host.failed_servers().items():
                say(f"turnout: MCP server {name!r} is not available: {why}")
            if args.json:
                result = ChatSession(session.model, session.tools,
                                     settings=ChatSettings(drafter=args.drafter)).send(prompt)
                result.model = args.model or "the policy's targets"
                print(json.dumps(result.model_dump(), indent=2))
                return 0 if result.exit_status == "answered" else 1
            connected = len(servers) - len(session.host.failed_servers())
            return interactive(session, args.model or "the policy's targets", router_for, chat_dir, connected, say,
                               ChatSettings(drafter=args.drafter))


def interactive(
    opened: compose.Session,
    model_spec: str,
    router_for: Callable[[str], PolicyRouter],
    chat_dir: Path,
    connected: int,
    print_line: Callable[[str], None],
    settings: ChatSettings | None = None,
) -> int:
    """The terminal session: a line from the user, the model's answer, until /quit or Ctrl-D."""
    settings = settings or ChatSettings()
    guarded = opened.tools
    # What each answer writes is a run of its own, so /undo (or `turnout undo`) can put it back.
    turns = UndoableTurns(guarded, Path.cwd())
    totals = SessionTotals(opened.model.policy.targets if isinstance(opened.model, PolicyRouter) else {})
    history = ChatHistory(history_file(chat_dir, Path.cwd()), settings.history_messages)
    live = LiveReply(terminal_writer(), f"{model_spec}> ")

    def say(line: str) -> None:  # a line of ours never lands in the middle of the model's
        live.interrupt()
        print_line(line)

    session = ChatSession(opened.model, turns, settings=settings, history=history.load(), show=say,
                          on_text=live.piece)
    if isinstance(session.model, PolicyRouter):  # the labels it had picked up come back with it
        session.model.adopt_taint(history.load_taint())
    tools = guarded.list_tools()
    say(f"model {model_spec}; {len(tools)} tools from {connected} MCP servers; "
        f"approvals: {guarded.policy.mode}. /help lists the commands.")
    if session.messages:
        say(f"(resumed a conversation of {len(session.messages)} messages; /new starts over)")
    read_line = line_reader(
        chat_dir, COMMANDS,
        lambda: f" {live.prefix[:-2]} · approvals: {guarded.policy.mode} · "
        f"{totals.prompt + totals.completion} tokens · Esc Enter: new line",
    )
    while True:
        try:
            line = read_line("you> ").strip()
        except EOFError:
            say("")
            break
        except KeyboardInterrupt:
            say("")
            continue
        if not line:
            continue
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            rest = rest.strip()
            if command in ("/quit", "/exit"):
                break
            if command == "/help":
                say(HELP)
            elif command == "/new":
                session.messages = []
                history.save([])
                say("(new conversation)")
            elif command == "/tools":
                for info in guarded.visible_tools():
                    rule = decide(guarded.policy, info)
                    say(f"  {info.name:<36} [{info.server}] {rule:<5} {info.description.strip()[:60]}")
            elif command == "/approvals":
                if rest and rest not in MODES:
                    say(f"unknown approval mode {rest!r}; choose one of {', '.join(MODES)}")
                    continue
                if rest:
                    guarded.policy = guarded.policy.model_copy(update={"mode": rest})
                say(f"approval mode: {guarded.policy.mode}")
            elif command == "/model":
                if rest:
                    try:
                        switched = router_for(rest)
                        if isinstance(session.model, PolicyRouter):  # one conversation, one taint
                            switched.carry_taint_from(session.model)
                        session.model = switched
                        model_spec = rest
                        live.prefix = f"{model_spec}> "
                    except (TurnoutError, OSError, ValueError) as exc:
                        # A missing file or a server that does not answer: the session goes on.
                        say(f"turnout: {exc}; still on {model_spec}")
                say(f"model: {model_spec}")
                if not rest:
                    say(model_choices(session.model))
            elif command == "/route":
                show_route(session, say)
            elif command == "/diff":
                say(turns.diff() or "this session has changed no file")
            elif command == "/cost":
                say(totals.line())
            elif command == "/undo":
                undone = turns.undo_last()
                say(render_undo(undone) if undone else "nothing to undo: no answer or /run of this session changed a file")
            elif command == "/run":
                if not rest:
                    say('/run needs the task, e.g. /run make the tests pass')
                    continue
                run_in_chat(rest, session, guarded.policy.mode, turns, say)
            else:
                say(f"unknown command {command}; /help lists them")
            continue
        turns.begin(line)
        try:
            result = session.send(line)
        except KeyboardInterrupt:
            say("(interrupted)")
            continue
        totals.add(result)
        if result.error:
            say(f"turnout: {result.exit_status}: {result.error}")
        else:
            live.finish(result.reply)
        history.save(session.messages, session.model.taint if isinstance(session.model, PolicyRouter) else [])
    return 0


class SessionTotals:
    """The tokens a chat session used, per target, priced where the policy gives a price."""

    def __init__(self, targets: Mapping[str, TargetConfig]) -> None:
        self.prices = target_prices(targets)
        self.prompt = self.completion = 0
        self.cost_usd = 0.0

    def add(self, result: TurnResult) -> None:
        self.prompt += result.prompt_tokens
        self.completion += result.completion_tokens
        if price := self.prices.get(result.route):
            self.cost_usd += price.cost(Usage(prompt_tokens=result.prompt_tokens,
                                              completion_tokens=result.completion_tokens))

    def line(self) -> str:
        cost = f", ${self.cost_usd:.4f}" if self.prices else " (no target here has a price)"
        return f"{self.prompt} prompt + {self.completion} completion tokens{cost}"


def run_in_chat(task: str, session: ChatSession, mode: str, turns: UndoableTurns, say: Callable[[str], None]) -> None:
    """`/run TASK`: the agent loop of `turnout run` on this directory, through the chat's model
    (the policy router: its targets answer as they would in the chat) and its approval mode."""
    try:
        report = run_task(task, Path.cwd(), session.model, approval_mode=mode,  # type: ignore[arg-type]
                          asker=terminal_asker, progress=lambda line: say(f"  ({line})"))
    except RunInterrupted as stopped:
        report = stopped.report
    except UsageError as exc:
        say(f"turnout: {exc}")
        return
    turns.turns.append(report.run_id)
    say(render(report))
    # The conversation hears what was done, so a follow-up question can build on it.
    session.messages.append(Message(role="user", content=f"/run {task}"))
    session.messages.append(Message(role="assistant", content=f"{report.exit_status}: {report.summary}"))


def model_choices(model: object) -> str:
    """What `/model SPEC` can switch to without a download: the policy's targets by name and
    the catalog models installed here."""
    targets = sorted(model.policy.targets) if isinstance(model, PolicyRouter) else []
    installed = [name for name in models.CATALOG if models.is_installed(name)]
    return (f"  the policy's targets: {', '.join(targets) or '(none)'}\n"
            f"  installed models: {', '.join(installed) or '(none: turnout models install NAME)'}\n"
            f"  or any of: {compose.MODEL_FORMS}")


def show_route(session: ChatSession, say: Callable[[str], None]) -> None:
    explain = getattr(session.model, "explain", None)
    if session.last_request is None or explain is None:
        say("no request yet")
        return
    decision = explain(session.last_request)
    say(f"target: {decision.target or '(refused)'}  rule: {decision.rule}  work: {decision.work_class}")
    targets = session.model.policy.targets if isinstance(session.model, PolicyRouter) else {}
    if decision.target in targets:
        target = targets[decision.target]
        say(f"location: {target.location} ({target.location_rule})")
    say(f"reason: {decision.reason}")
    for reason in decision.reasons:
        say(f"  - {reason}")



"""What `turnout chat` looks like at a terminal: the input line and the answer as it is written.

`read_line` is a prompt_toolkit prompt when stdin and stdout are a terminal: a paste of several
lines arrives as one message (bracketed paste), Esc then Enter (or Alt+Enter) starts a new line
inside a message, Tab completes slash commands, and a bottom toolbar shows the model, the
approval mode and the tokens used. Anywhere else (a pipe, a script) it is plain `input()`, one
line a message, so that scripted sessions behave as before.

`LiveReply` shows the model's words while they are decoded. A tool call is text too, in the
text protocol (a fenced JSON block, or a `<tool_call>` tag): from such a marker on, the rest of
that reply is not shown as words, since the call is shown as a call once it has been parsed
and checked. Whatever the stream did not show, the end of the turn prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from turnout.router.atrest import touch_private

# Where a reply stops being words for the reader: a fence (the text protocol's call block, or
# code, which reads better printed whole at the end) or a Hermes-style call tag.
MARKERS = ("```", "<tool_call>")


class LiveReply:
    """The model's words, written as they arrive, on a line that starts with `prefix`."""

    def __init__(self, write: Callable[[str], None], prefix: str) -> None:
        self.write = write
        self.prefix = prefix
        self.segment = ""  # shown since the last line this view started
        self._pending = ""  # held back: it may be the start of a marker
        self._hidden = False  # a marker was seen: the rest of this reply is not words
        self._open = False  # a line of ours is open on the terminal

    def piece(self, text: str) -> None:
        """A piece of the reply being decoded."""
        if self._hidden:
            return
        pending = self._pending + text
        cut = min((at for marker in MARKERS if (at := pending.find(marker)) >= 0), default=-1)
        if cut >= 0:
            self._show(pending[:cut])
            self._pending, self._hidden = "", True
            return
        keep = held_back(pending)
        self._show(pending[: len(pending) - keep])
        self._pending = pending[len(pending) - keep :]

    def interrupt(self) -> None:
        """Another line is about to be printed (a tool call, a notice): end ours first, and let
        the next reply of the turn start a line of its own."""
        if self._open:
            self.write("\n")
        self._open, self._hidden, self._pending, self.segment = False, False, "", ""

    def finish(self, reply: str) -> None:
        """The turn's answer is `reply`: print what the stream did not show, end the line."""
        shown = self.segment
        whole = reply.strip()
        if shown.strip() and whole.startswith(shown.rstrip()):
            # What was shown may end in a newline or spaces the reply's end does not have.
            rest = whole[len(shown.rstrip()):]
            if rest and shown != shown.rstrip():
                rest = rest.lstrip(" \t")
                rest = rest[1:] if rest.startswith("\n") and shown.endswith("\n") else rest
            self.write(rest)
            if not (rest or shown).endswith("\n"):
                self.write("\n")
        else:
            if self._open:
                self.write("\n")
            self.write(f"{self.prefix}{whole}\n")
        self._open, self._hidden, self._pending, self.segment = False, False, "", ""

    def _show(self, text: str) -> None:
        if not text:
            return
        if not self._open:
            text = text.lstrip()
            if not text:
                return
            self.write(self.prefix)
            self._open = True
        self.segment += text
        self.write(text)


def held_back(text: str) -> int:
    """How many trailing characters of `text` could be the start of a marker."""
    for size in range(min(len(text), max(map(len, MARKERS)) - 1), 0, -1):
        if any(marker.startswith(text[-size:]) for marker in MARKERS):
            return size
    return 0


def terminal_writer() -> Callable[[str], None]:
    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return write


def line_reader(
    state: Path, commands: list[str], toolbar: Callable[[], str]
) -> Callable[[str], str]:
    """A function that shows the prompt and returns the user's message (EOFError on Ctrl-D,
    KeyboardInterrupt on Ctrl-C, as `input` does). What was typed is kept in `state`, in each
    reader's own format."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or os.environ.get("TERM") == "dumb":
        return plain_reader(state / "input_history")
    history = state / "prompt_history"
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    class SlashCommands(Completer):
        def get_completions(self, document, complete_event):  # type: ignore[no-untyped-def]
            typed = document.text_before_cursor
            if typed.startswith("/") and " " not in typed:
                for command in commands:
                    if command.startswith(typed):
                        yield Completion(command, start_position=-len(typed))

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _new_line(event) -> None:  # type: ignore[no-untyped-def]
        event.current_buffer.insert_text("\n")

    history.parent.mkdir(parents=True, exist_ok=True)
    touch_private(history)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)), completer=SlashCommands(), key_bindings=bindings,
        bottom_toolbar=toolbar, complete_while_typing=True,
    )
    return lambda prompt: session.prompt(prompt)


def plain_reader(history: Path) -> Callable[[str], str]:
    """`input()`, with readline's line editing and history where the platform has it."""
    try:
        import readline
    except ImportError:  # not on every platform: input() works unedited
        return input
    import atexit
    import contextlib

    with contextlib.suppress(OSError):
        readline.read_history_file(str(history))

    def save() -> None:
        with contextlib.suppress(OSError):
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(str(touch_private(history)))

    atexit.register(save)
    return input


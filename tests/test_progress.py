"""Progress lines while a long prompt is evaluated (no model: a fake clock drives them)."""

from __future__ import annotations

from turnout.runtimes.local.llama_cpp import PrefillProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_prefill_says_what_is_new_how_far_it_got_and_what_it_cost() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = PrefillProgress(lines.append, min_tokens=1024, every_s=10.0, clock=clock)

    progress(0, 3000, 200)
    clock.now += 4.0
    progress(512, 3000, 200)  # under 10 s since the last line: quiet
    clock.now += 8.0
    progress(1024, 3000, 200)  # 1024 tokens in 12 s: 1976 left at that pace is about 23 s
    clock.now += 23.0
    progress(3000, 3000, 200)

    assert lines == [
        "reading a 3,200-token prompt (3,000 new, 200 from the cache) ...",
        "reading the prompt: 1,024/3,000 tokens, about 23s left",
        "read 3,000 prompt tokens in 35s (86 tok/s)",
    ]


def test_a_prompt_the_cache_mostly_covers_says_nothing() -> None:
    lines: list[str] = []
    progress = PrefillProgress(lines.append, min_tokens=1024, clock=Clock())
    progress(0, 300, 5000)
    progress(300, 300, 5000)
    assert lines == []

"""Degenerate repetition inside one reply, caught while the reply is generated.

Provides `RepetitionConfig` and `RepetitionGuard`: fed a reply token by token (token ids, or
text pieces from a stream), the guard trips as soon as the tail of the reply has become one unit
repeated over and over ("the the the ...", a line printed again and again), so the runtime can
end the generation there instead of spending the rest of `max_tokens` on it. `llama_cpp_processor`
wraps a guard as a llama-cpp-python logits processor that forces end-of-sequence once it trips.

Anchor: Gemini CLI stops a stream after 10 repeats of a 50-character chunk, about 125 tokens
after the repetition starts. We want it gone within 64 tokens, so the rule is on tokens: a
stretch of at least `min_tokens` tokens that repeats a unit of at most `max_period` tokens at
least `min_repeats` times. With the defaults (48, 16, 4) every repetition is caught at most 64
tokens after its first unit began, and a legitimate run of the same token needs 48 in a row.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from pydantic import BaseModel, Field


class RepetitionConfig(BaseModel):
    """When one reply counts as degenerate repetition."""

    enabled: bool = Field(default=True, description="end a reply that has become a repeated unit")
    max_period: int = Field(default=16, ge=1, description="longest repeated unit, in tokens")
    min_tokens: int = Field(default=48, ge=2, description="shortest repeated stretch that trips")
    min_repeats: int = Field(default=4, ge=2, description="fewest repeats of the unit that trip")


class RepetitionGuard:
    """Watches one reply. `feed` each new item; it returns True once the reply has degenerated."""

    def __init__(self, config: RepetitionConfig | None = None) -> None:
        self.config = config or RepetitionConfig()
        self._items: list[Hashable] = []
        # For each period p: how many trailing items equal the item p before them.
        self._runs = [0] * (self.config.max_period + 1)
        self.tripped = False
        self.period = 0  # the unit's length when tripped
        self.started_at = 0  # index of the first item of the repeated stretch
        self.tripped_at = 0  # how many items had been fed when it tripped

    @property
    def fed(self) -> int:
        return len(self._items)

    def feed(self, item: Hashable) -> bool:
        self._items.append(item)
        if self.tripped or not self.config.enabled:
            return self.tripped
        last = len(self._items) - 1
        for period in range(1, self.config.max_period + 1):
            if last - period < 0:
                break
            if self._items[last] == self._items[last - period]:
                self._runs[period] += 1
            else:
                self._runs[period] = 0
            stretch = self._runs[period] + period  # the first unit plus every repeat of it
            needed = max(self.config.min_tokens, self.config.min_repeats * period)
            if self._runs[period] > 0 and stretch >= needed:
                self.tripped = True
                self.period = period
                self.started_at = len(self._items) - stretch
                self.tripped_at = len(self._items)
                return True
        return False

    def feed_all(self, items: list[Hashable]) -> bool:
        for item in items:
            if self.feed(item):
                return True
        return False


def llama_cpp_processor(guard: RepetitionGuard, end_of_sequence: int) -> Any:
    """A llama-cpp-python logits processor: watches the generated tokens through `guard` and,
    once it trips, leaves end-of-sequence as the only choice so the generation stops there."""
    prompt_length: list[int] = []

    def process(input_ids: Any, scores: Any) -> Any:
        # input_ids is the whole context so far; the first call sees only the prompt.
        if not prompt_length:
            prompt_length.append(len(input_ids))
        generated = len(input_ids) - prompt_length[0]
        while guard.fed < generated and not guard.tripped:
            guard.feed(int(input_ids[prompt_length[0] + guard.fed]))
        if guard.tripped:
            scores[:] = -float("inf")
            scores[end_of_sequence] = 0.0
        return scores

    return process

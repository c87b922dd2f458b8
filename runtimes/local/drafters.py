"""The drafters the local runtime can speculate with, and the `Drafter` protocol they keep.

- `SuffixDrafter`: model-free. It remembers every token of the session (earlier prompts, outputs
  and tool results, and the current prompt and output) and drafts the continuation of the
  longest earlier match of the text just generated, in the spirit of SuffixDecoding
  (arXiv 2411.04975). Continuations seen more often, more recently and after longer matches
  weigh more; its confidence in a token grows with the match length and is learned from the
  target's recent verdicts, so it drafts nothing where it has been wrong (and tries again once
  the text has moved on).
- `NoDrafter`: drafts nothing (plain decoding through the same loop).

The third, `DraftModelDrafter` (a small model with the target's tokenizer), drafts with a decode
loop of its own and so lives with that loop, in `speculative.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Draft:
    """Tokens a drafter guesses come next, each with its estimated chance of being accepted
    given that the ones before it were (so the verifier can weigh length against cost)."""

    tokens: list[int]
    confidence: list[float]


@runtime_checkable
class Drafter(Protocol):
    """Guesses the next tokens cheaply so the local runtime can verify several in one batch.

    The runtime calls `begin` with each call's prompt, `propose` before every verify step with
    everything so far (prompt, output, and the token about to be evaluated), `feedback` with how
    many drafted tokens the target accepted, and `finish` with the whole sequence at the end.
    """

    name: str
    cost_per_token: float  # drafting one token, as a fraction of one target decode step

    def begin(self, prompt_tokens: Sequence[int]) -> None: ...

    def propose(self, context: Sequence[int], max_tokens: int) -> Draft: ...

    def feedback(self, drafted: int, accepted: int) -> None: ...

    def finish(self, context: Sequence[int]) -> None: ...


SEPARATOR = -1  # between documents in the suffix index; never a real token

# Prior chance that a drafted token is accepted, by the length of the match it came from.
# Learned per session from the target's verdicts (see SuffixDrafter.feedback). Higher priors
# with faster learning were tried (benchmark, 1.5B, this CPU): a few early rejections then
# stopped drafting for good on markdown and session (30 tokens drafted instead of ~200).
MATCH_BUCKETS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
PRIOR_ACCEPTANCE = (0.30, 0.45, 0.55, 0.65, 0.72, 0.80, 0.85, 0.90, 0.93, 0.95, 0.96)


RECENCY = 0.8  # a candidate's vote against the next newer one's: two older agreeing still outvote it
STREAK_DECAY_TOKENS = 8  # each this many tokens without a verdict forgives one rejection


def _bucket(match_length: int) -> int:
    index = 0
    for i, edge in enumerate(MATCH_BUCKETS):
        if match_length >= edge:
            index = i
    return index


class SuffixIndex:
    """The session's tokens as documents, with an n-gram index for longest-match lookup.

    `tokens` holds every document back to back, each followed by SEPARATOR. `index` maps each
    `key_length`-gram to the positions of the tokens that followed it, oldest first; a lookup
    walks the newest `max_candidates` of them and measures how far back each match reaches.
    When the session outgrows `capacity` tokens, the oldest documents are evicted.
    """

    def __init__(
        self, *, capacity: int = 200_000, key_length: int = 2, max_match: int = 64,
        max_candidates: int = 48,
    ) -> None:
        self.capacity = capacity
        self.key_length = key_length
        self.max_match = max_match
        self.max_candidates = max_candidates
        self.tokens: list[int] = []
        self.document_starts: list[int] = []
        self.index: dict[tuple[int, ...], list[int]] = {}
        self._open = False  # whether the last document can still grow

    def __len__(self) -> int:
        return len(self.tokens)

    def current_document(self) -> list[int]:
        if not self._open or not self.document_starts:
            return []
        return self.tokens[self.document_starts[-1] :]

    def add_document(self, tokens: Sequence[int]) -> None:
        """Start a new document (closing the previous one) with these tokens."""
        self.close_document()
        self.document_starts.append(len(self.tokens))
        self._open = True
        self.extend(tokens)
        self._evict()

    def close_document(self) -> None:
        if self._open:
            self.tokens.append(SEPARATOR)
            self._open = False

    def extend(self, tokens: Sequence[int]) -> None:
        """Append tokens to the open document, indexing each after its preceding n-gram."""
        if not self._open:
            self.document_starts.append(len(self.tokens))
            self._open = True
        start = self.document_starts[-1]
        k = self.key_length
        for token in tokens:
            self.tokens.append(int(token))
            j = len(self.tokens) - 1
            if j - start >= k:
                key = tuple(self.tokens[j - k : j])
                self.index.setdefault(key, []).append(j)

    def _evict(self) -> None:
        if len(self.tokens) <= self.capacity or len(self.document_starts) < 2:
            return
        # Drop the oldest documents down to three quarters of the capacity, then re-index:
        # positions shift, and eviction is rare enough that a rebuild is the simple way.
        target = self.capacity * 3 // 4
        keep_from = len(self.document_starts) - 1
        for i, start in enumerate(self.document_starts):
            if len(self.tokens) - start <= target:
                keep_from = i
                break
        keep_from = min(keep_from, len(self.document_starts) - 1)
        cut = self.document_starts[keep_from]
        kept = self.tokens[cut:]
        starts = [s - cut for s in self.document_starts[keep_from:]]
        self.tokens, self.document_starts, self.index = [], [], {}
        open_last = self._open
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(kept)
            body = [t for t in kept[s:end] if t != SEPARATOR]
            self._open = False
            self.document_starts.append(len(self.tokens))
            self._open = True
            self.extend(body)
            if i + 1 < len(starts) or not open_last:
                self.close_document()
        self._open = open_last

    def matches(self, context: Sequence[int]) -> list[tuple[int, int]]:
        """(position of the next token, match length) for earlier occurrences of the context's
        tail, longest first. Lengths count tokens that agree going back from the tail."""
        k = self.key_length
        if len(context) < k:
            return []
        positions = self.index.get(tuple(context[-k:]))
        if not positions:
            return []
        found: list[tuple[int, int]] = []
        tokens = self.tokens
        n_ctx = len(context)
        limit = min(self.max_match, n_ctx)
        for pos in reversed(positions[-self.max_candidates :]):
            if pos >= len(tokens) or tokens[pos] == SEPARATOR:
                continue
            length = k
            while length < limit and pos - length - 1 >= 0:
                t = tokens[pos - length - 1]
                if t == SEPARATOR or t != context[n_ctx - length - 1]:
                    break
                length += 1
            found.append((pos, length))
        found.sort(key=lambda pl: -pl[1])  # stable: among equals, the newest first
        return found


class SuffixDrafter:
    """Drafts what followed the longest earlier match of the current text in this session."""

    name = "suffix"
    cost_per_token = 0.0  # a dictionary lookup: nothing next to a model step

    def __init__(self, index: SuffixIndex | None = None, *, min_match: int = 3) -> None:
        self.index = index or SuffixIndex()
        self.min_match = min_match
        self.acceptance = list(PRIOR_ACCEPTANCE)
        self.rejection_streak = 0
        self._streak_at = 0  # context length when the streak last changed
        self._context_length = 0  # at the last proposal
        self._last_buckets: list[int] = []

    def reset(self) -> None:
        """Forget the session (tokens and learned acceptance)."""
        self.__init__(SuffixIndex(  # type: ignore[misc]
            capacity=self.index.capacity, key_length=self.index.key_length,
            max_match=self.index.max_match, max_candidates=self.index.max_candidates,
        ), min_match=self.min_match)

    def begin(self, prompt_tokens: Sequence[int]) -> None:
        # A chat that goes on sends the previous prompt and reply again, plus a new tail: grow
        # the open document instead of storing the whole conversation once per call.
        current = self.index.current_document()
        if current and len(prompt_tokens) >= len(current) and list(
            prompt_tokens[: len(current)]
        ) == current:
            self.index.extend(prompt_tokens[len(current) :])
        else:
            self.index.add_document(prompt_tokens)

    def _sync(self, context: Sequence[int]) -> None:
        current = self.index.current_document()
        if len(context) > len(current):
            self.index.extend(context[len(current) :])

    def propose(self, context: Sequence[int], max_tokens: int) -> Draft:
        self._sync(context)
        self._context_length = len(context)
        found = self.index.matches(context)
        found = [(p, m) for p, m in found if m >= self.min_match]
        if not found or max_tokens <= 0:
            self._last_buckets = []
            return Draft(tokens=[], confidence=[])
        tokens = self.index.tokens
        end = len(tokens)
        # Candidates vote for a continuation with weight growing with their match length and
        # with recency: an agent copies the latest version of a file, not the first one.
        newest_first = sorted(range(len(found)), key=lambda i: -found[i][0])
        age = {i: rank for rank, i in enumerate(newest_first)}
        weights = [float(m * m) * RECENCY ** age[i] for i, (_, m) in enumerate(found)]
        votes: dict[int, float] = {}
        for (p, _), w in zip(found, weights):
            votes[tokens[p]] = votes.get(tokens[p], 0.0) + w
        first = max(votes, key=lambda t: votes[t])
        leader_pos, leader_match = next((p, m) for p, m in found if tokens[p] == first)
        alive = [(p, w) for (p, _), w in zip(found, weights)]
        total = sum(weights)
        draft: list[int] = []
        confidence: list[float] = []
        buckets: list[int] = []
        agreed_before = 1.0
        penalty = 0.75 ** min(self._current_streak(), 6)
        for i in range(max_tokens):
            at = leader_pos + i
            if at >= end or tokens[at] == SEPARATOR:
                break
            token = tokens[at]
            alive = [(p, w) for p, w in alive if p + i < end and tokens[p + i] == token]
            agreed = sum(w for _, w in alive) / total
            bucket = _bucket(leader_match + i)
            share = agreed / agreed_before if agreed_before > 0 else 0.0
            draft.append(token)
            confidence.append(max(0.0, min(0.995, self.acceptance[bucket] * share * penalty)))
            buckets.append(bucket)
            agreed_before = agreed
        self._last_buckets = buckets
        return Draft(tokens=draft, confidence=confidence)

    def feedback(self, drafted: int, accepted: int) -> None:
        # Learn the acceptance by match length from the target's verdicts: the accepted
        # tokens were right, the first rejected one wrong; nothing is known past it.
        rate = 0.1
        for i, bucket in enumerate(self._last_buckets[:drafted]):
            if i < accepted:
                self.acceptance[bucket] += rate * (1.0 - self.acceptance[bucket])
            elif i == accepted:
                self.acceptance[bucket] += rate * (0.0 - self.acceptance[bucket])
                break
        self.rejection_streak = 0 if accepted == drafted else self._current_streak() + 1
        self._streak_at = self._context_length

    def _current_streak(self) -> int:
        # Recent rejections make drafting shy; the shyness wears off as text goes by without a
        # verdict, or one wrong stretch would stop drafting for the rest of the session (no
        # drafts, so no accepted draft to reset the streak).
        quiet = max(self._context_length - self._streak_at, 0) // STREAK_DECAY_TOKENS
        return max(self.rejection_streak - quiet, 0)

    def finish(self, context: Sequence[int]) -> None:
        self._sync(context)


class NoDrafter:
    """Drafts nothing: plain one-token-at-a-time decoding through the same loop."""

    name = "none"
    cost_per_token = 0.0

    def begin(self, prompt_tokens: Sequence[int]) -> None:
        pass

    def propose(self, context: Sequence[int], max_tokens: int) -> Draft:
        return Draft(tokens=[], confidence=[])

    def feedback(self, drafted: int, accepted: int) -> None:
        pass

    def finish(self, context: Sequence[int]) -> None:
        pass

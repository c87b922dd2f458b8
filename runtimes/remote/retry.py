"""The one retry layer of every networked runtime (openai, anthropic, openai_compat).

Provides `RetryPolicy`, `BreakerPolicy` and `Pricing` (config), `CircuitBreaker` (one per
target), `RunBudget` (one per run, shared by its targets), `TransientError`/`PermanentError`
(what a runtime raises from one attempt), `retry_after_seconds` and `RetryLayer`, which sends
one request through all of it.

The SDKs retry on their own by default; a second layer under ours would multiply attempts
(3 x 3 = 9 calls where the policy says 3). So the runtimes build their clients with
`max_retries=0` and every retry happens here: bounded attempts, exponential backoff with jitter,
a server's `Retry-After` honoured (or, when it asks for longer than `retry_after_max_s`, the
retries end at once so the router can fall back to the next allowed target), and a circuit
breaker that stops sending to a target that keeps failing. Each upstream attempt is logged with
target, attempt, status, outcome and wait; never the payload.

When the retries are spent the layer raises `UpstreamFailure` (a `RuntimeFailure`, so the
router moves on to the next allowed target); `CircuitOpen` and `BudgetExceeded` are raised before
anything is sent.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from turnout.runtimes.base import ChatModel, ChatRequest, ChatResponse, Usage
from turnout.runtimes.errors import BudgetExceeded, CircuitOpen, UpstreamFailure

__all__ = [
    "BreakerPolicy",
    "Budgeted",
    "CircuitBreaker",
    "PermanentError",
    "Pricing",
    "RetryLayer",
    "RetryPolicy",
    "RunBudget",
    "TransientError",
    "estimate_prompt_tokens",
    "retry_after_seconds",
    "status_error",
]


class RetryPolicy(BaseModel):
    """How hard one request tries one target before the router moves on."""

    max_attempts: int = Field(default=3, ge=1, description="upstream attempts, the first included")
    backoff_initial_s: float = Field(default=0.5, ge=0, description="wait after the 1st failure")
    backoff_max_s: float = Field(default=8.0, ge=0, description="cap on the exponential backoff")
    jitter_s: float = Field(default=0.5, ge=0, description="random extra wait, 0..jitter_s")
    retry_after_max_s: float = Field(
        default=30.0,
        ge=0,
        description="a Retry-After longer than this ends the retries (fall back instead of wait)",
    )
    timeout_s: float = Field(
        default=60.0, gt=0, description="per attempt: connecting, and each read of the response"
    )
    deadline_s: float | None = Field(
        default=None, gt=0, description="whole request, waits included; None = no deadline"
    )


class BreakerPolicy(BaseModel):
    """When a target counts as down, and for how long."""

    failure_threshold: int = Field(
        default=5, ge=1, description="consecutive transient failures that open the circuit"
    )
    reset_after_s: float = Field(
        default=30.0, ge=0, description="how long it stays open before one trial request"
    )


class Pricing(BaseModel):
    """What a target costs, in US dollars per million tokens (0 for local and on-prem targets),
    the unit providers publish prices in."""

    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1_000_000


class TransientError(Exception):
    """One attempt failed in a way a later attempt may not: 408, 429, 5xx, timeout, a dropped
    connection or a stream cut before its end."""

    def __init__(self, status: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {detail}" if detail else status)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.elapsed_s = 0.0  # how long the failed attempt took, filled in by the RetryLayer


class PermanentError(Exception):
    """One attempt failed in a way that retrying the same request cannot fix (400, 401, 404...)."""

    def __init__(self, status: str, detail: str = "") -> None:
        super().__init__(f"{status}: {detail}" if detail else status)
        self.status = status
        self.detail = detail


def status_error(
    status_code: int, headers: Mapping[str, str] | None, detail: str = ""
) -> TransientError | PermanentError:
    """Classify an HTTP error status: 408, 429 and 5xx are transient, other 4xx permanent."""
    if status_code in (408, 429) or status_code >= 500:
        return TransientError(str(status_code), detail, retry_after_seconds(headers or {}))
    return PermanentError(str(status_code), detail)


def retry_after_seconds(
    headers: Mapping[str, str], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """The wait a server asked for: `retry-after-ms`, or `Retry-After` as seconds or HTTP-date."""
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000.0, 0.0)
        except ValueError:
            pass  # a malformed header is ignored, as if absent
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A cheap upper-ish estimate (4 characters a token) used only to check budgets up front."""
    chars = sum(len(m.content) for m in request.messages)
    chars += sum(len(str(c.arguments)) for m in request.messages for c in m.tool_calls)
    chars += sum(len(t.description) + len(str(t.input_schema)) for t in request.tools)
    return chars // 4 + 1


BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Per target: opens after `failure_threshold` consecutive transient failures, then refuses
    requests (nothing sent) for `reset_after_s`, then lets one trial through (half open): its
    success closes the circuit, its failure opens it again. A 4xx is the request's fault, not
    the target's: it counts as the target answering."""

    def __init__(
        self,
        target: str,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.policy.reset_after_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a request be sent now? In half-open state only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.policy.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def release_trial(self) -> None:
        """Let another trial through after one that ended without a verdict on the target."""
        with self._lock:
            self._trial_in_flight = False

    def retry_in(self) -> float:
        """Seconds until a trial request will be let through (0 when closed or half open)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(self.policy.reset_after_s - (self._clock() - self._opened_at), 0.0)


class BudgetPolicy(BaseModel):
    """Limits for one run, across all its targets; None = no limit."""

    max_tokens: int | None = Field(default=None, ge=1, description="prompt + completion tokens")
    max_cost_usd: float | None = Field(default=None, ge=0, description="priced by each target")


class RunBudget:
    """What a run has spent, checked before each request and charged after each reply.

    The check is worst case (the estimated prompt plus the request's `max_tokens`), so a run
    never passes its limit by more than the estimate's error; a request that would is refused
    before anything is sent.
    """

    def __init__(self, policy: BudgetPolicy | None = None) -> None:
        self.policy = policy or BudgetPolicy()
        self._lock = threading.Lock()
        self.tokens = 0
        self.cost_usd = 0.0

    def check(self, target: str, request: ChatRequest, pricing: Pricing) -> None:
        prompt = estimate_prompt_tokens(request)
        worst = Usage(prompt_tokens=prompt, completion_tokens=request.max_tokens)
        with self._lock:
            limit = self.policy.max_tokens
            if limit is not None and self.tokens + worst.total_tokens > limit:
                raise BudgetExceeded(
                    f"{target}: the run has used {self.tokens} of its {limit} tokens and this "
                    f"request may need {worst.total_tokens} (about {prompt} prompt + max_tokens "
                    f"{request.max_tokens}); raise the run's token budget or shorten the request",
                    target=target,
                    budget="tokens",
                )
            cost_limit = self.policy.max_cost_usd
            worst_cost = pricing.cost(worst)
            if cost_limit is not None and self.cost_usd + worst_cost > cost_limit:
                raise BudgetExceeded(
                    f"{target}: the run has spent ${self.cost_usd:.4f} of its ${cost_limit:.4f} "
                    f"budget and this request may cost ${worst_cost:.4f}; raise the run's cost "
                    "budget or let the request go to a local target",
                    target=target,
                    budget="cost",
                )

    def charge(self, usage: Usage, pricing: Pricing) -> None:
        with self._lock:
            self.tokens += usage.total_tokens
            self.cost_usd += pricing.cost(usage)


class Budgeted:
    """A model that does not go through a `RetryLayer` (the in-process local one), checked and
    charged against the run's budget all the same: the token limit is over every target."""

    def __init__(self, inner: ChatModel, budget: RunBudget, name: str | None = None) -> None:
        self.inner = inner
        self.budget = budget
        self.name = name or inner.name
        self._free = Pricing()

    def chat(self, request: ChatRequest) -> ChatResponse:
        self.budget.check(self.name, request, self._free)
        response = self.inner.chat(request)
        self.budget.charge(response.usage, self._free)
        return response


class RetryLayer:
    """Sends one request to one target through budget check, breaker and bounded retries."""

    def __init__(
        self,
        target: str,
        policy: RetryPolicy | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        budget: RunBudget | None = None,
        pricing: Pricing | None = None,
        logger: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.policy = policy or RetryPolicy()
        self.breaker = breaker if breaker is not None else CircuitBreaker(target)
        self.budget = budget
        self.pricing = pricing or Pricing()
        self._log = logger if logger is not None else structlog.get_logger("turnout.runtimes")
        self._sleep = sleep
        self._rng = rng or random.Random()

    def chat(self, request: ChatRequest, send: Callable[[], ChatResponse]) -> ChatResponse:
        """Call `send` (one upstream attempt) until it answers or the policy says stop.

        `send` raises TransientError or PermanentError for a failed attempt. A partial answer
        (a stream cut in the middle) must be raised as TransientError, never returned.
        """
        if self.budget is not None:
            self.budget.check(self.target, request, self.pricing)
        attempts = 0

        def attempt() -> ChatResponse:
            nonlocal attempts
            if not self.breaker.allow():
                raise CircuitOpen(
                    f"{self.target}: the circuit is open after repeated failures; nothing was "
                    f"sent; it lets a trial request through in {self.breaker.retry_in():.0f} s",
                    target=self.target,
                    attempts=attempts,
                )
            attempts += 1
            started = time.monotonic()
            try:
                response = send()
            except TransientError as exc:
                self.breaker.record_failure()
                exc.elapsed_s = time.monotonic() - started
                raise
            except PermanentError as exc:
                # The request's fault, not the target's: the target answered, so it is up.
                self.breaker.record_success()
                self._log_attempt(attempts, exc.status, "failed", 0.0, time.monotonic() - started)
                raise
            except BaseException:
                self.breaker.release_trial()  # a bug here says nothing about the target
                raise
            self.breaker.record_success()
            self._log_attempt(attempts, "ok", "ok", 0.0, time.monotonic() - started)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts) | self._stop_early,
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except TransientError as exc:
            self._log_attempt(attempts, exc.status, "gave_up", 0.0, exc.elapsed_s)
            raise UpstreamFailure(
                f"{self.target}: {exc.status} on attempt {attempts} of "
                f"{self.policy.max_attempts}{_detail(exc.detail)}; {_giving_up_hint(exc)}",
                target=self.target,
                attempts=attempts,
                status=exc.status,
                retryable=True,
            ) from exc
        except PermanentError as exc:
            raise UpstreamFailure(
                f"{self.target}: the server refused the request ({exc.status})"
                f"{_detail(exc.detail)}; {_permanent_hint(exc.status)}",
                target=self.target,
                attempts=attempts,
                status=exc.status,
                retryable=False,
            ) from exc
        response.attempts = attempts
        if self.budget is not None:
            self.budget.charge(response.usage, self.pricing)
        return response

    # tenacity hooks ------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        jitter = self._rng.uniform(0.0, self.policy.jitter_s)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # The server knows when it will take us back: wait that long, plus jitter so that
            # clients told the same time do not all return at once.
            return retry_after + jitter
        backoff = self.policy.backoff_initial_s * 2 ** (state.attempt_number - 1)
        return min(backoff, self.policy.backoff_max_s) + jitter

    def _stop_early(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > self.policy.retry_after_max_s:
            return True  # a long wait is worse than the next allowed target
        deadline = self.policy.deadline_s
        if deadline is not None and state.seconds_since_start + state.upcoming_sleep > deadline:
            return True
        # An open circuit will refuse the next attempt anyway: stop here, with the real error.
        return self.breaker.state == "open" and self.breaker.retry_in() > state.upcoming_sleep

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        status = getattr(exc, "status", type(exc).__name__)
        elapsed = getattr(exc, "elapsed_s", 0.0)
        self._log_attempt(state.attempt_number, status, "retry", state.upcoming_sleep, elapsed)

    def _log_attempt(
        self, attempt: int, status: str, outcome: str, wait_s: float, elapsed_s: float
    ) -> None:
        # Metadata only: the payload and the credentials never reach a log line.
        self._log.info(
            "upstream_attempt",
            target=self.target,
            attempt=attempt,
            max_attempts=self.policy.max_attempts,
            status=status,
            outcome=outcome,
            wait_s=round(wait_s, 3),
            elapsed_s=round(elapsed_s, 3),
        )


def _detail(detail: str) -> str:
    return f" ({detail[:200]})" if detail else ""


def _giving_up_hint(exc: TransientError) -> str:
    if exc.status == "429":
        return (
            "the provider is rate limiting; wait, lower the request rate, or allow another target"
        )
    if exc.status == "timeout":
        return "raise timeout_s for this target if its answers are long, or check the server"
    if exc.status in ("connection", "stream_cut"):
        return "check that the server is up and reachable at its base_url"
    return "the server is failing; the request may go to the next allowed target"


def _permanent_hint(status: str) -> str:
    if status in ("401", "403"):
        return "check the API key in the target's api_key_env variable"
    if status == "404":
        return "check the target's model name and base_url"
    return "the request is invalid for this target; retrying it unchanged cannot help"

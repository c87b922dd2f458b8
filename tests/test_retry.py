"""The one retry layer: Retry-After, backoff, the attempt bound, the circuit breaker, budgets.

Where a fault matters on the wire the requests go to a real local HTTP server (`FakeUpstream`)
through the `openai` runtime, so "nothing was sent" is counted in bytes at the server.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from turnout.runtimes.base import ChatRequest, ChatResponse, Message, Usage
from turnout.runtimes.errors import BudgetExceeded, CircuitOpen, RuntimeFailure, UpstreamFailure
from turnout.runtimes.remote.openai_rt import OpenAIChatModel, OpenAIConfig
from turnout.runtimes.remote.retry import (
    BreakerPolicy,
    BudgetPolicy,
    CircuitBreaker,
    PermanentError,
    Pricing,
    RetryLayer,
    RetryPolicy,
    RunBudget,
    TransientError,
    retry_after_seconds,
)
from turnout.runtimes.testing.fake_upstream import (
    FakeUpstream,
    Scripted,
    openai_error,
    openai_stream,
)

REQUEST = ChatRequest(messages=[Message(role="user", content="hello " * 40)], max_tokens=100)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    """A clock the test moves by hand, for the breaker's reset timer."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scripted_send(outcomes: list[Exception | ChatResponse]) -> Any:
    """A `send` that fails or answers as scripted, counting its calls."""

    def send() -> ChatResponse:
        send.calls += 1  # type: ignore[attr-defined]
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    send.calls = 0  # type: ignore[attr-defined]
    return send


def layer(sleeps: Sleeps, **policy: Any) -> RetryLayer:
    fields: dict[str, Any] = {"max_attempts": 3, "jitter_s": 0.0}
    fields.update(policy)
    # A breaker that never opens here, so these tests see the retry policy alone.
    breaker = CircuitBreaker("cloud-a", BreakerPolicy(failure_threshold=100))
    return RetryLayer(
        "cloud-a", RetryPolicy(**fields), breaker=breaker, sleep=sleeps, rng=random.Random(7)
    )


# ---------------------------------------------------------------------------------------------
# Retry-After


def test_retry_after_is_read_as_seconds_milliseconds_or_an_http_date() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert (
        retry_after_seconds({"Retry-After": "Thu, 26 Nov 2026 12:00:12 GMT"}, now=lambda: now)
        == 12.0
    )
    assert (
        retry_after_seconds({"Retry-After": "Thu, 26 Nov 2026 11:59:00 GMT"}, now=lambda: now)
        == 0.0
    )
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_an_http_date_retry_after_from_the_server_is_waited_out() -> None:
    when = datetime.now(UTC).replace(microsecond=0)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")  # "now": the wait must be ~0, not fail
    script = [Scripted.error(429, retry_after=header), Scripted.sse(openai_stream("ok"))]
    sleeps = Sleeps()
    with FakeUpstream(script) as up:
        config = OpenAIConfig(model="m", base_url=up.url + "/v1", retry=RetryPolicy(jitter_s=0.0))
        response = OpenAIChatModel(config, api_key="k", sleep=sleeps).chat(REQUEST)
    assert response.text == "ok" and response.attempts == 2
    assert len(sleeps) == 1 and sleeps[0] <= 1.0


def test_a_retry_after_longer_than_the_cap_ends_the_retries_at_once() -> None:
    sleeps = Sleeps()
    send = scripted_send([TransientError("429", retry_after=600.0), ChatResponse(text="late")])
    with pytest.raises(UpstreamFailure) as failure:
        layer(sleeps, retry_after_max_s=30.0).chat(REQUEST, send)
    # Waiting ten minutes is worse than the next allowed target: one attempt, no sleep.
    assert send.calls == 1 and sleeps == [] and failure.value.attempts == 1
    assert "rate limiting" in str(failure.value)


def test_the_wait_is_the_retry_after_plus_bounded_jitter() -> None:
    sleeps = Sleeps()
    send = scripted_send([TransientError("429", retry_after=3.0), ChatResponse(text="ok")])
    layer(sleeps, jitter_s=0.5).chat(REQUEST, send)
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 3.5


def test_backoff_doubles_and_is_capped() -> None:
    sleeps = Sleeps()
    failures: list[Exception | ChatResponse] = [TransientError("500") for _ in range(5)]
    with pytest.raises(UpstreamFailure):
        layer(sleeps, max_attempts=6, backoff_initial_s=1.0, backoff_max_s=3.0).chat(
            REQUEST, scripted_send([*failures, TransientError("500")])
        )
    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_permanent_error_is_not_retried_and_the_attempt_is_logged() -> None:
    sleeps = Sleeps()
    send = scripted_send([PermanentError("400", "invalid_request_error")])
    with structlog.testing.capture_logs() as logs, pytest.raises(UpstreamFailure) as failure:
        layer(sleeps).chat(REQUEST, send)
    assert send.calls == 1 and sleeps == [] and not failure.value.retryable
    assert [(e["attempt"], e["status"], e["outcome"]) for e in logs] == [(1, "400", "failed")]


def test_the_deadline_stops_retries_whose_wait_would_pass_it() -> None:
    sleeps = Sleeps()
    send = scripted_send([TransientError("503", retry_after=5.0), ChatResponse(text="ok")])
    with pytest.raises(UpstreamFailure):
        layer(sleeps, deadline_s=2.0).chat(REQUEST, send)
    assert send.calls == 1 and sleeps == []


def test_a_bug_in_the_runtime_is_raised_as_is_not_retried() -> None:
    send = scripted_send([TypeError("a bug, not an outage")])
    with pytest.raises(TypeError):
        layer(Sleeps()).chat(REQUEST, send)
    assert send.calls == 1


# ---------------------------------------------------------------------------------------------
# Circuit breaker


def test_the_breaker_opens_after_consecutive_failures_and_then_sends_nothing() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "cloud-a", BreakerPolicy(failure_threshold=4, reset_after_s=30), clock=clock
    )
    failing = lambda _request: Scripted.error(502)
    with FakeUpstream(failing) as up, structlog.testing.capture_logs() as logs:
        config = OpenAIConfig(
            model="m", base_url=up.url + "/v1", retry=RetryPolicy(max_attempts=3, jitter_s=0)
        )
        model = OpenAIChatModel(config, api_key="k", breaker=breaker, sleep=Sleeps())
        with pytest.raises(UpstreamFailure) as first:
            model.chat(REQUEST)  # 3 failures
        with pytest.raises(UpstreamFailure) as second:
            model.chat(REQUEST)  # the 4th failure opens the circuit: no 5th attempt
        sent_before = (len(up.requests), up.bytes_received)
        with pytest.raises(CircuitOpen) as third:
            model.chat(REQUEST)
        assert (len(up.requests), up.bytes_received) == sent_before  # zero bytes while open

    assert first.value.attempts == 3 and second.value.attempts == 1
    assert breaker.state == "open" and third.value.attempts == 0
    assert isinstance(third.value, RuntimeFailure)  # so the router falls back
    assert "30 s" in str(third.value)
    assert len([e for e in logs if e["event"] == "upstream_attempt"]) == 4


def test_a_half_open_breaker_lets_one_trial_through_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "cloud-a", BreakerPolicy(failure_threshold=2, reset_after_s=10), clock=clock
    )
    script = [Scripted.error(500), Scripted.error(500), Scripted.sse(openai_stream("back"))]
    with FakeUpstream(script) as up:
        config = OpenAIConfig(
            model="m", base_url=up.url + "/v1", retry=RetryPolicy(max_attempts=2, jitter_s=0)
        )
        model = OpenAIChatModel(config, api_key="k", breaker=breaker, sleep=Sleeps())
        with pytest.raises(UpstreamFailure):
            model.chat(REQUEST)
        assert breaker.state == "open"
        clock.now += 10
        assert breaker.state == "half_open"
        assert model.chat(REQUEST).text == "back"
    assert breaker.state == "closed" and len(up.requests) == 3


def test_a_failed_trial_reopens_the_breaker_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=3, reset_after_s=5), clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state == "open" and breaker.retry_in() == 5


def test_a_half_open_trial_that_ends_without_a_verdict_does_not_wedge_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=1, reset_after_s=5), clock=clock)
    retry_layer = RetryLayer("t", RetryPolicy(max_attempts=1), breaker=breaker, sleep=Sleeps())
    with pytest.raises(UpstreamFailure):
        retry_layer.chat(REQUEST, scripted_send([TransientError("500")]))
    clock.now += 5
    with pytest.raises(TypeError):  # the trial hits a bug on our side
        retry_layer.chat(REQUEST, scripted_send([TypeError("bug")]))
    assert breaker.state == "half_open" and breaker.allow()  # the next trial may go
    breaker.release_trial()
    with pytest.raises(UpstreamFailure):  # the target answers 400: it is up
        retry_layer.chat(REQUEST, scripted_send([PermanentError("400")]))
    assert breaker.state == "closed"


def test_client_errors_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker("cloud-a", BreakerPolicy(failure_threshold=1))
    with FakeUpstream(lambda _r: Scripted.error(400, openai_error(400))) as up:
        config = OpenAIConfig(model="m", base_url=up.url + "/v1")
        model = OpenAIChatModel(config, api_key="k", breaker=breaker, sleep=Sleeps())
        for _ in range(3):
            with pytest.raises(UpstreamFailure):
                model.chat(REQUEST)
    assert breaker.state == "closed" and len(up.requests) == 3


# ---------------------------------------------------------------------------------------------
# Budgets


def test_a_token_budget_refuses_the_request_that_could_pass_it_before_sending() -> None:
    budget = RunBudget(BudgetPolicy(max_tokens=500))
    with FakeUpstream([Scripted.sse(openai_stream("one", usage=(120, 180)))]) as up:
        config = OpenAIConfig(model="m", base_url=up.url + "/v1")
        model = OpenAIChatModel(config, api_key="k", budget=budget, sleep=Sleeps())
        model.chat(REQUEST)  # about 61 prompt + 100 max_tokens fits in 500
        assert budget.tokens == 300  # charged with the usage the server reported
        sent = up.bytes_received
        with pytest.raises(BudgetExceeded) as refused:
            model.chat(REQUEST.model_copy(update={"max_tokens": 400}))  # 300 + 61 + 400 > 500
        assert len(up.requests) == 1 and up.bytes_received == sent
    assert refused.value.attempts == 0 and "300 of its 500 tokens" in str(refused.value)


def test_a_cost_budget_is_charged_at_the_targets_prices_and_enforced_across_targets() -> None:
    budget = RunBudget(BudgetPolicy(max_cost_usd=0.01))
    pricey = Pricing(input_per_mtok=10.0, output_per_mtok=30.0)
    cheap_send = scripted_send(
        [ChatResponse(usage=Usage(prompt_tokens=200, completion_tokens=100))]
    )
    RetryLayer("cloud-a", budget=budget, pricing=pricey).chat(REQUEST, cheap_send)
    assert budget.cost_usd == pytest.approx((200 * 10 + 100 * 30) / 1e6)

    # Another target of the same run shares the budget: a request that may cost more is refused.
    big = REQUEST.model_copy(update={"max_tokens": 400})
    never = scripted_send([])
    with pytest.raises(BudgetExceeded) as refused:
        RetryLayer("cloud-b", budget=budget, pricing=Pricing(output_per_mtok=30.0)).chat(big, never)
    assert never.calls == 0 and refused.value.budget == "cost" and refused.value.target == "cloud-b"
    # A free (local) target is never refused by a cost budget.
    free = scripted_send([ChatResponse(text="local")])
    assert RetryLayer("local", budget=budget).chat(big, free).text == "local"

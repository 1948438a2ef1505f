"""The error hierarchy's statuses, and the retry policy's bounds."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from ragline_core import deadlines
from ragline_core.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from ragline_core.paid_calls import throttle_for
from ragline_core.retry import RetryPolicy, RetryThrottle, call_with_retries


def test_error_becomes_rich_status_with_reason_and_field():
    status = InvalidArgumentError("text is required", field="text").to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT and status.message == "text is required"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "INVALID_ARGUMENT" and info.domain == "ragline.dev"
    bad = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad)
    assert bad.field_violations[0].field == "text"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFoundError("x"), grpc.StatusCode.NOT_FOUND),
        (UnavailableError("x"), grpc.StatusCode.UNAVAILABLE),
        (DeadlineExceededError("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
def test_each_class_knows_its_code(error, code):
    assert error.code == code


def test_backoff_is_jittered_and_capped():
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=2.0)
    delays = [policy.delay(n) for n in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jitter, not a fixed schedule


class Flaky(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


async def test_retries_only_retryable_errors_and_stops_at_the_attempt_bound():
    calls = []

    async def always_503(timeout: float) -> str:
        calls.append(timeout)
        raise Flaky(503)

    policy = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
    with pytest.raises(Flaky):
        await call_with_retries(
            always_503,
            policy=policy,
            default_timeout=5,
            retryable=lambda e: isinstance(e, Flaky) and e.status >= 500,
        )
    assert len(calls) == 3

    calls.clear()

    async def bad_request(timeout: float) -> str:
        calls.append(timeout)
        raise Flaky(400)

    with pytest.raises(Flaky):
        await call_with_retries(
            bad_request,
            policy=policy,
            default_timeout=5,
            retryable=lambda e: isinstance(e, Flaky) and e.status >= 500,
        )
    assert len(calls) == 1


async def test_attempt_timeout_is_what_is_left_of_the_deadline():
    seen = []

    async def record(timeout: float) -> str:
        seen.append(timeout)
        return "ok"

    async def with_deadline() -> None:
        deadlines.set_deadline(1.0)
        await call_with_retries(
            record, policy=RetryPolicy(), default_timeout=30, retryable=lambda e: False
        )

    await asyncio.create_task(with_deadline())
    assert 0.5 < seen[0] <= 1.0


async def test_no_attempt_once_the_deadline_has_passed():
    async def never(timeout: float) -> str:
        raise AssertionError("must not be called")

    async def expired() -> None:
        deadlines.set_deadline(-1.0)
        await call_with_retries(
            never, policy=RetryPolicy(), default_timeout=30, retryable=lambda e: True
        )

    with pytest.raises(DeadlineExceededError):
        await asyncio.create_task(expired())


async def test_the_retry_budget_stops_retries_in_an_outage_and_returns_with_successes():
    """gRFC A6 throttling: 10 tokens, each failed attempt -1, each success +0.1, retries
    only above 5. An outage of 20 requests costs 20 + 4 attempts, not 3 x 20."""
    throttle = RetryThrottle(10, 0.1)
    policy = RetryPolicy(attempts=3, base_delay=0.0001, max_delay=0.0002)
    attempts = 0
    up = False

    async def provider(timeout: float) -> str:
        nonlocal attempts
        attempts += 1
        if not up:
            raise Flaky(503)
        return "ok"

    async def request() -> str:
        return await call_with_retries(
            provider,
            policy=policy,
            default_timeout=5,
            retryable=lambda e: isinstance(e, Flaky) and e.status >= 500,
            throttle=throttle,
        )

    for _ in range(20):
        with pytest.raises(Flaky):
            await request()
    # 10 -> 9 (retry) -> 8 (retry) -> 7 (3 attempts); 6 (retry) -> 5 (no more); then 1 each.
    assert attempts == 20 + 3
    assert throttle.tokens == 0 and not throttle.allows_retry()
    up = True
    for _ in range(50):
        assert await request() == "ok"
    assert not throttle.allows_retry()  # 50 successes x 0.1: exactly half, not above
    for _ in range(11):
        assert await request() == "ok"
    assert throttle.allows_retry()
    # An isolated failure is retried again once the provider is healthy.
    up = False
    attempts = 0
    with pytest.raises(Flaky):
        await request()
    assert attempts == 2  # 6.1 -> 5.1: one retry; -> 4.1: the budget says no


async def test_a_budget_of_zero_tokens_means_no_budget():
    throttle = RetryThrottle(0, 0.1)
    for _ in range(100):
        throttle.record_failure()
    assert throttle.allows_retry()


def test_each_provider_has_its_own_budget():
    policy = RetryPolicy(budget_tokens=4, budget_ratio=0.5)
    voyage = throttle_for("test-voyage", policy)
    assert throttle_for("test-voyage", policy) is voyage
    assert throttle_for("test-openai", policy) is not voyage
    for _ in range(3):
        voyage.record_failure()
    assert not voyage.allows_retry() and throttle_for("test-openai", policy).allows_retry()

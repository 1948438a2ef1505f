"""Bounded retries with exponential backoff and full jitter, inside the caller's deadline,
and a retry budget so an outage does not multiply the load on what is failing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ragline_core import deadlines
from ragline_core.errors import DeadlineExceededError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts in total, how long to wait between them, and the retry budget
    (RetryThrottle): its size in tokens (0: no budget) and what a success earns back."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget_tokens: float = 10.0
    budget_ratio: float = 0.1

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class RetryThrottle:
    """A retry budget, as gRPC's retry throttling (gRFC A6): a bucket of `tokens` that
    every failed attempt drains by one and every success refills by `ratio`; a retry is
    allowed only while the bucket is more than half full. An isolated failure is retried;
    in an outage, after about tokens/2 failures nothing is retried until successes have
    refilled the bucket, so attempts stay close to requests (docs/reliability.md)."""

    def __init__(self, tokens: float, ratio: float) -> None:
        self.max_tokens = tokens
        self.ratio = ratio
        self.tokens = tokens

    def record_success(self) -> None:
        self.tokens = min(self.max_tokens, self.tokens + self.ratio)

    def record_failure(self) -> None:
        self.tokens = max(0.0, self.tokens - 1)

    def allows_retry(self) -> bool:
        return self.max_tokens <= 0 or self.tokens > self.max_tokens / 2


async def call_with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    default_timeout: float,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException], None] | None = None,
    throttle: RetryThrottle | None = None,
    on_throttled: Callable[[BaseException], None] | None = None,
) -> T:
    """Calls `call(timeout)` until it succeeds, fails for good, or time runs out.

    Each attempt gets what is left of the caller's deadline as its timeout; a backoff
    that would not fit in that time is not slept, and the last error is raised instead.
    With a throttle, a retryable failure is retried only while its budget allows.
    """
    attempt = 0
    while True:
        budget = deadlines.remaining(default_timeout)
        if budget <= 0:
            raise DeadlineExceededError("deadline exceeded before the provider answered")
        try:
            result = await call(budget)
        except Exception as exc:
            attempt += 1
            if not retryable(exc):
                raise
            if throttle is not None:
                throttle.record_failure()
            if attempt >= policy.attempts:
                raise
            if throttle is not None and not throttle.allows_retry():
                if on_throttled is not None:
                    on_throttled(exc)
                raise
            pause = policy.delay(attempt)
            if pause >= deadlines.remaining(default_timeout):
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(pause)
            continue
        if throttle is not None:
            throttle.record_success()
        return result

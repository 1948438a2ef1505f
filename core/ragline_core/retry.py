"""Bounded retries with exponential backoff and full jitter, inside the caller's deadline."""

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
    """How many attempts in total, and how long to wait between them."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


async def call_with_retries(
    call: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    default_timeout: float,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Calls `call(timeout)` until it succeeds, fails for good, or time runs out.

    Each attempt gets what is left of the caller's deadline as its timeout; a backoff
    that would not fit in that time is not slept, and the last error is raised instead.
    """
    attempt = 0
    while True:
        budget = deadlines.remaining(default_timeout)
        if budget <= 0:
            raise DeadlineExceededError("deadline exceeded before the provider answered")
        try:
            return await call(budget)
        except Exception as exc:
            attempt += 1
            if attempt >= policy.attempts or not retryable(exc):
                raise
            pause = policy.delay(attempt)
            if pause >= deadlines.remaining(default_timeout):
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(pause)

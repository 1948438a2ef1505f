"""One call to a paid provider: bounded retries on 429/5xx within the caller's deadline and
a retry budget per provider and process, latency and outcome metrics, and SDK errors mapped
to ragline errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ragline_core.errors import RaglineError
from ragline_core.metrics import PROVIDER_DURATION, PROVIDER_REQUESTS
from ragline_core.retry import RetryPolicy, RetryThrottle, call_with_retries

T = TypeVar("T")
# One retry budget per provider in this process (every model of a provider shares its
# outage and its rate limit).
_THROTTLES: dict[str, RetryThrottle] = {}


def throttle_for(provider: str, policy: RetryPolicy) -> RetryThrottle:
    found = _THROTTLES.get(provider)
    if found is None:
        found = _THROTTLES[provider] = RetryThrottle(policy.budget_tokens, policy.budget_ratio)
    return found


async def call_paid_provider(
    provider: str,
    model: str,
    call: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    default_timeout: float,
    retryable: Callable[[BaseException], bool],
    translate: Callable[[BaseException], RaglineError],
) -> T:
    """`call(timeout)` with retries; each attempt's latency is observed, retries and
    failures counted. Success is counted by the caller (a stream succeeds at its end)."""

    async def attempt(budget: float) -> T:
        started = time.perf_counter()
        try:
            return await call(budget)
        finally:
            PROVIDER_DURATION.labels(provider, model).observe(time.perf_counter() - started)

    def on_retry(_exc: BaseException) -> None:
        PROVIDER_REQUESTS.labels(provider, model, "retried").inc()

    def on_throttled(_exc: BaseException) -> None:
        PROVIDER_REQUESTS.labels(provider, model, "retry_throttled").inc()

    try:
        return await call_with_retries(
            attempt,
            policy=policy,
            default_timeout=default_timeout,
            retryable=retryable,
            on_retry=on_retry,
            throttle=throttle_for(provider, policy),
            on_throttled=on_throttled,
        )
    except RaglineError:
        PROVIDER_REQUESTS.labels(provider, model, "error").inc()
        raise
    except Exception as exc:
        PROVIDER_REQUESTS.labels(provider, model, "error").inc()
        raise translate(exc) from None

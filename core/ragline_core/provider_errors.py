"""Maps paid-provider failures to ragline errors, for every service that calls a paid API
(embedder, chat, retriever rerank). Provider messages are never echoed to clients."""

from __future__ import annotations

from dataclasses import dataclass

from ragline_core.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    RaglineError,
    UnavailableError,
)


def provider_error(
    provider: str, key_variable: str, status: int | None, timeout: bool
) -> RaglineError:
    meta = {"provider": provider}
    if timeout:
        return DeadlineExceededError(
            f"{provider} did not answer in time", reason="PROVIDER_TIMEOUT", metadata=meta
        )
    if status == 429:
        return UnavailableError(
            f"{provider} is rate limiting requests; try again later",
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
        )
    if status in (401, 403):
        return UnavailableError(
            f"{provider} rejected the configured {key_variable}",
            reason="PROVIDER_AUTH_FAILED",
            metadata=meta,
        )
    if status in (400, 413, 422):
        return InvalidArgumentError(
            f"{provider} rejected the request", reason="PROVIDER_REJECTED_INPUT", metadata=meta
        )
    if status is not None and status >= 500:
        return UnavailableError(
            f"{provider} is unavailable (HTTP {status})",
            reason="PROVIDER_UNAVAILABLE",
            metadata=meta,
        )
    return UnavailableError(
        f"{provider} could not be reached", reason="PROVIDER_UNREACHABLE", metadata=meta
    )


def not_configured(provider: str, model: str, key_variable: str) -> UnavailableError:
    return UnavailableError(
        f"model {model!r} needs {key_variable}, which is not set",
        reason="PROVIDER_NOT_CONFIGURED",
        metadata={"provider": provider},
    )


@dataclass(frozen=True)
class SdkErrors:
    """How an official SDK built on the same generator (openai, anthropic) reports failures:
    a connection error, its timeout subclass, and status errors carrying `status_code`."""

    connection: type[BaseException]
    timeout: type[BaseException]
    status: type[BaseException]

    def status_of(self, exc: BaseException) -> int | None:
        if not isinstance(exc, self.status):
            return None
        return int(getattr(exc, "status_code", 0)) or None

    def timed_out(self, exc: BaseException) -> bool:
        return isinstance(exc, self.timeout)

    def connection_failed(self, exc: BaseException) -> bool:
        """Refused or reset before an answer: worth another attempt (a timeout is not,
        it already spent the attempt's budget)."""
        return isinstance(exc, self.connection) and not self.timed_out(exc)

    def retryable(self, exc: BaseException) -> bool:
        return self.connection_failed(exc) or retryable_status(self.status_of(exc))

    def translate(self, provider: str, key_variable: str, exc: BaseException) -> RaglineError:
        return provider_error(provider, key_variable, self.status_of(exc), self.timed_out(exc))


def retryable_status(status: int | None) -> bool:
    """Rate limited or a server error: the same request may succeed later."""
    return status is not None and (status == 429 or status >= 500)

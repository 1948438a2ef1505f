"""Shared behaviour of paid embedding APIs: retries on 429/5xx and refused or reset
connections, error mapping, metrics.

Subclasses make one attempt with their official SDK and say how to read its errors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ragline_core.embedding_models import ModelSpec
from ragline_core.errors import RaglineError
from ragline_core.metrics import PROVIDER_REQUESTS
from ragline_core.paid_calls import call_paid_provider
from ragline_core.provider_errors import not_configured, provider_error, retryable_status
from ragline_core.retry import RetryPolicy
from ragline_embedder.providers.base import ProviderResult


class PaidProvider(ABC):
    """A provider reached over HTTP with an API key."""

    name: str
    key_variable: str

    def __init__(
        self,
        api_key: str | None,
        policy: RetryPolicy,
        default_timeout: float,
        attempt_timeout: float,
    ) -> None:
        self._api_key = api_key
        self.policy = policy
        self.default_timeout = default_timeout
        self.attempt_timeout = attempt_timeout

    @property
    def configured(self) -> bool:
        return bool(self._api_key)

    async def embed(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        if not self.configured:
            raise not_configured(self.name, model.name, self.key_variable)

        result = await call_paid_provider(
            self.name,
            model.name,
            lambda budget: self._attempt(model, texts, min(budget, timeout, self.attempt_timeout)),
            policy=self.policy,
            default_timeout=self.default_timeout,
            retryable=self._retryable,
            translate=self._translate,
        )
        PROVIDER_REQUESTS.labels(self.name, model.name, "ok").inc()
        return result

    def _retryable(self, exc: BaseException) -> bool:
        return self._connection_failed(exc) or retryable_status(self._status_of(exc))

    def _translate(self, exc: BaseException) -> RaglineError:
        return provider_error(
            self.name, self.key_variable, self._status_of(exc), self._is_timeout(exc)
        )

    @abstractmethod
    async def _attempt(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        """One call to the provider."""

    @abstractmethod
    def _status_of(self, exc: BaseException) -> int | None:
        """The HTTP status behind an SDK error, if it has one."""

    @abstractmethod
    def _is_timeout(self, exc: BaseException) -> bool:
        """True when the SDK error is a timeout."""

    @abstractmethod
    def _connection_failed(self, exc: BaseException) -> bool:
        """True when the connection was refused or reset before an answer (not a timeout)."""

    @abstractmethod
    async def close(self) -> None:
        """Releases pooled connections."""

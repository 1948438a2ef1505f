"""OpenAI embeddings through the official SDK (text-embedding-3-small/large)."""

from __future__ import annotations

import httpx2
import numpy as np
import openai

from ragline_core.embedding_models import ModelSpec
from ragline_core.provider_errors import SdkErrors
from ragline_core.retry import RetryPolicy
from ragline_embedder.providers.base import ProviderResult, clip_to_token_limit, estimate_tokens
from ragline_embedder.providers.paid import PaidProvider

ERRORS = SdkErrors(openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError)


class OpenAIProvider(PaidProvider):
    name = "openai"
    key_variable = "OPENAI_API_KEY"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        policy: RetryPolicy,
        default_timeout: float,
        attempt_timeout: float,
        max_connections: int,
    ) -> None:
        super().__init__(api_key, policy, default_timeout, attempt_timeout)
        self._client: openai.AsyncOpenAI | None = None
        if api_key:
            # One pooled HTTP client for the process; we retry ourselves, so the SDK doesn't.
            self._client = openai.AsyncOpenAI(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(
                    limits=httpx2.Limits(
                        max_connections=max_connections,
                        max_keepalive_connections=max_connections,
                    )
                ),
            )

    async def _attempt(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        assert self._client is not None
        clipped, truncated = clip_to_token_limit(texts, model.max_tokens)
        response = await self._client.embeddings.create(
            model=model.name, input=clipped, encoding_format="float", timeout=timeout
        )
        rows = sorted(response.data, key=lambda d: d.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        return ProviderResult(
            vectors=vectors,
            token_counts=[estimate_tokens(t) for t in clipped],
            truncated=truncated,
            billed_tokens=int(response.usage.total_tokens),
        )

    def _status_of(self, exc: BaseException) -> int | None:
        return ERRORS.status_of(exc)

    def _is_timeout(self, exc: BaseException) -> bool:
        return ERRORS.timed_out(exc)

    def _connection_failed(self, exc: BaseException) -> bool:
        return ERRORS.connection_failed(exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

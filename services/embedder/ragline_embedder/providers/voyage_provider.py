"""Voyage AI embeddings through the official SDK (voyage-3-large, voyage-3.5, ...)."""

from __future__ import annotations

import aiohttp
import numpy as np
import voyageai
import voyageai.error

from ragline_core.embedding_models import ModelSpec
from ragline_core.retry import RetryPolicy
from ragline_embedder.providers.base import ProviderResult, clip_to_token_limit, estimate_tokens
from ragline_embedder.providers.paid import PaidProvider


class VoyageProvider(PaidProvider):
    name = "voyage"
    key_variable = "VOYAGE_AI_API_KEY"

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
        self._base_url = base_url
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _pooled_session(self) -> aiohttp.ClientSession:
        # The SDK opens a session per call unless one is set in its context variable.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections)
            )
        return self._session

    async def _attempt(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        voyageai.aiosession.set(self._pooled_session())
        client = voyageai.AsyncClient(
            api_key=self._api_key, max_retries=0, timeout=timeout, base_url=self._base_url
        )
        clipped, truncated = clip_to_token_limit(texts, model.max_tokens)
        response = await client.embed(clipped, model=model.name, truncation=True)
        vectors = np.asarray(response.embeddings, dtype=np.float32)
        return ProviderResult(
            vectors=vectors,
            token_counts=[estimate_tokens(t) for t in clipped],
            truncated=truncated,
            billed_tokens=int(response.total_tokens),
        )

    def _status_of(self, exc: BaseException) -> int | None:
        if isinstance(exc, voyageai.error.VoyageError) and exc.http_status is not None:
            return int(exc.http_status)
        return None

    def _is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, voyageai.error.Timeout)

    def _connection_failed(self, exc: BaseException) -> bool:
        return isinstance(exc, voyageai.error.APIConnectionError)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

"""Embedding domain logic: validate, resolve the model, serve from cache, call the
provider (falling back to other models for the whole batch), and account for usage."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragline_core import deadlines
from ragline_core import embedding_models as models
from ragline_core.embedding_models import ModelSpec
from ragline_core.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    RaglineError,
    UnavailableError,
)
from ragline_core.metrics import COST, EMBEDDED_TEXTS, TOKENS
from ragline_core.spend import SpendGuard
from ragline_embedder.cache import CachedEmbedding, EmbeddingCache
from ragline_embedder.providers.base import EmbeddingProvider

log = logging.getLogger("ragline.embedder")


@dataclass(frozen=True)
class EmbeddingItem:
    vector: npt.NDArray[np.float32]
    token_count: int
    truncated: bool
    cached: bool


@dataclass(frozen=True)
class EmbeddingResult:
    model: ModelSpec
    items: list[EmbeddingItem]
    billed_tokens: int


@dataclass(frozen=True)
class Limits:
    max_batch_size: int
    max_text_chars: int
    default_timeout: float


class EmbeddingService:
    def __init__(
        self,
        providers: Mapping[str, EmbeddingProvider],
        cache: EmbeddingCache,
        limits: Limits,
        default_model: str,
        fallback_models: Sequence[str],
        spend: SpendGuard,
    ) -> None:
        self.providers = providers
        self.cache = cache
        self.limits = limits
        self.default_model = models.resolve(default_model)
        self.fallbacks = [models.resolve(name) for name in fallback_models]
        self.spend = spend

    def validate(self, texts: Sequence[str], field: str) -> None:
        """Rejects empty batches, blank or oversized texts, and too many texts."""
        if not texts:
            raise InvalidArgumentError(f"{field} is required", field=field)
        if len(texts) > self.limits.max_batch_size:
            raise InvalidArgumentError(
                f"{field} has {len(texts)} entries; at most {self.limits.max_batch_size} "
                "are allowed per request (MAX_BATCH_SIZE)",
                reason="BATCH_TOO_LARGE",
                field=field,
            )
        for i, text in enumerate(texts):
            name = field if field == "text" else f"{field}[{i}]"
            if not text.strip():
                raise InvalidArgumentError(
                    f"{name} must not be empty or whitespace", reason="EMPTY_TEXT", field=name
                )
            if len(text) > self.limits.max_text_chars:
                raise InvalidArgumentError(
                    f"{name} is {len(text)} characters; the limit is {self.limits.max_text_chars}",
                    reason="TEXT_TOO_LONG",
                    field=name,
                )

    async def embed(self, texts: list[str], model_name: str, tenant: str) -> EmbeddingResult:
        requested = models.resolve(model_name) if model_name else self.default_model
        candidates = [requested, *(m for m in self.fallbacks if m != requested)]
        last_error: RaglineError | None = None
        for model in candidates:
            try:
                return await self._embed_with(model, texts, tenant)
            except (UnavailableError, DeadlineExceededError) as exc:
                # A provider outage, or a provider slower than PROVIDER_TIMEOUT while the
                # caller's deadline still runs (found by the fault battery: that was a 504
                # with a fallback configured): try the next model for the whole batch, so
                # vectors in one response always share one model.
                if isinstance(exc, DeadlineExceededError) and (
                    exc.reason != "PROVIDER_TIMEOUT"
                    or deadlines.remaining(self.limits.default_timeout) <= 0
                ):
                    raise
                last_error = exc
                if model is not candidates[-1]:
                    log.warning(
                        "provider failed; falling back",
                        extra={"model": model.name, "reason": exc.reason},
                    )
        assert last_error is not None
        raise last_error

    async def _embed_with(self, model: ModelSpec, texts: list[str], tenant: str) -> EmbeddingResult:
        provider = self.providers[model.provider]
        cached = await self.cache.get_many(tenant, model.name, texts)
        missing = [i for i, hit in enumerate(cached) if hit is None]
        fresh: dict[int, CachedEmbedding] = {}
        billed = 0
        if missing:
            budget = deadlines.remaining(self.limits.default_timeout)
            if budget <= 0:
                raise DeadlineExceededError("deadline exceeded before embedding")
            if model.usd_per_million_tokens:
                await self.spend.check(tenant)
            # Identical texts in one batch are embedded once.
            unique = list(dict.fromkeys(texts[i] for i in missing))
            result = await provider.embed(model, unique, budget)
            billed = result.billed_tokens
            by_text = {
                text: CachedEmbedding(
                    result.vectors[j], result.token_counts[j], result.truncated[j]
                )
                for j, text in enumerate(unique)
            }
            fresh = {i: by_text[texts[i]] for i in missing}
            await self.cache.put_many(tenant, model.name, unique, [by_text[t] for t in unique])
            self._account(model, tenant, billed, len(unique))
            await self.spend.record(tenant, billed * model.usd_per_million_tokens / 1_000_000)
        items = []
        for i, hit in enumerate(cached):
            entry = hit if hit is not None else fresh[i]
            items.append(
                EmbeddingItem(
                    entry.vector, entry.token_count, entry.truncated, cached=hit is not None
                )
            )
        EMBEDDED_TEXTS.labels(model.name, "cache").inc(len(texts) - len(missing))
        return EmbeddingResult(model, items, billed)

    def _account(self, model: ModelSpec, tenant: str, billed: int, count: int) -> None:
        EMBEDDED_TEXTS.labels(model.name, "model").inc(count)
        if billed:
            TOKENS.labels(model.provider, model.name, "input", tenant).inc(billed)
            COST.labels(model.provider, model.name, tenant).inc(
                billed * model.usd_per_million_tokens / 1_000_000
            )

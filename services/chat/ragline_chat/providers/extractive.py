"""The extractive "model": the best supporting sentences, no LLM, no tokens billed."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Protocol

from ragline_chat.grounding import candidates, extractive_answer
from ragline_chat.models import EXTRACTIVE_SPAN
from ragline_chat.prompt import NO_CONTEXT
from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_core.errors import RaglineError

log = logging.getLogger(__name__)

_PIECE = re.compile(r"\S+\s*")


class Similarity(Protocol):
    def __call__(self, tenant: str, question: str, texts: Sequence[str]) -> Awaitable[list[float]]:
        """The question's cosine with each text."""


class ExtractiveProvider:
    name = "extractive"

    def __init__(self, similarity: Similarity | None = None) -> None:
        # Without it (or when the embedder fails) sentences are chosen by word overlap only.
        self.similarity = similarity

    @property
    def configured(self) -> bool:
        return True

    @property
    def unavailable_reason(self) -> str:
        return ""

    async def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        similarities = await self._similarities(request)
        answer, citations = extractive_answer(
            request.question,
            request.passages,
            concise=request.model.name == EXTRACTIVE_SPAN,
            similarities=similarities,
        )
        text = answer or NO_CONTEXT
        words = _PIECE.findall(text)
        limit = max(1, request.max_tokens)
        for word in words[:limit]:
            yield Chunk(text=word)
        yield Chunk(
            prompt_tokens=0,
            completion_tokens=0,
            finish_reason="length" if len(words) > limit else "stop",
            citations=tuple(citations),
        )

    async def _similarities(self, request: GenerationRequest) -> list[float] | None:
        ranked = candidates(request.question, request.passages)
        if self.similarity is None or len(ranked) < 2:
            return None
        try:
            return await self.similarity(
                request.tenant, request.question, [c.sentence.text for c in ranked]
            )
        except (RaglineError, OSError):
            log.warning("sentences chosen by word overlap only: the embedder failed", exc_info=True)
            return None

    async def close(self) -> None:
        return None

"""The extractive "model": the best supporting sentences, no LLM, no tokens billed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from ragline_chat.grounding import extractive_answer
from ragline_chat.models import EXTRACTIVE_SPAN
from ragline_chat.prompt import NO_CONTEXT
from ragline_chat.providers.base import Chunk, GenerationRequest

_PIECE = re.compile(r"\S+\s*")


class ExtractiveProvider:
    name = "extractive"

    @property
    def configured(self) -> bool:
        return True

    @property
    def unavailable_reason(self) -> str:
        return ""

    async def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        answer, citations = extractive_answer(
            request.question, request.passages, concise=request.model.name == EXTRACTIVE_SPAN
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

    async def close(self) -> None:
        return None

"""What every chat provider offers the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ragline_chat.domain import Citation, Passage, PromptMessage
from ragline_chat.models import ChatModelSpec


@dataclass(frozen=True)
class GenerationRequest:
    model: ChatModelSpec
    messages: Sequence[PromptMessage]
    max_tokens: int
    temperature: float
    # The question and passages, for providers that answer without a model.
    question: str
    passages: Sequence[Passage]
    # The caller's tenant, for providers that call other services on its behalf.
    tenant: str = ""


@dataclass(frozen=True)
class Chunk:
    """A piece of a generated answer; the last chunk carries usage and finish reason."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    # Set on the last chunk by providers that know what they quoted (extractive); others
    # leave it empty and the service derives citations from the answer's markers.
    citations: tuple[Citation, ...] = ()


class ChatProvider(Protocol):
    name: str

    @property
    def configured(self) -> bool:
        """False when the provider cannot be used (no key, model not loaded)."""

    @property
    def unavailable_reason(self) -> str:
        """Why it cannot be used now, for people ("" when it can)."""

    def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        """Generates the answer; raises RaglineError subclasses. Closing the iterator
        stops generation."""

    async def close(self) -> None:
        """Releases resources."""

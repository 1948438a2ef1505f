"""Plain domain types of the chat service (no protobuf beyond the servicer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
# Stored state of a message.
COMPLETE = "complete"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ChatInput:
    """One chat request, as received."""

    message: str
    conversation_id: str = ""
    model: str = ""
    collection: str = ""
    filters: dict[str, Any] | None = None
    limit: int = 0
    temperature: float | None = None
    max_tokens: int = 0
    # Persist the exchange as a conversation (the OpenAI-compatible API does not).
    persist: bool = True
    # Earlier turns supplied by the caller instead of a stored conversation.
    history: tuple[PromptMessage, ...] = ()


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, numbered as it appears in the prompt ([1], [2], ...)."""

    number: int
    chunk_id: str
    document_id: str
    title: str
    text: str
    score: float
    chunk_index: int


@dataclass(frozen=True)
class Citation:
    """A passage the answer used, with a verbatim quote from it."""

    index: int
    chunk_id: str
    document_id: str
    title: str
    chunk_index: int
    quote: str
    score: float

    @classmethod
    def of(cls, passage: Passage, quote: str) -> Citation:
        return cls(
            passage.number,
            passage.chunk_id,
            passage.document_id,
            passage.title,
            passage.chunk_index,
            quote,
            passage.score,
        )


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class PromptMessage:
    role: Role
    content: str


@dataclass
class StoredMessage:
    message_id: str
    role: str
    content: str
    status: str
    sequence: int
    created_at: datetime
    model: str = ""
    citations: list[Citation] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error_reason: str = ""
    search_query: str = ""


@dataclass
class Conversation:
    conversation_id: str
    tenant: str
    title: str
    collection: str
    model: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    messages: list[StoredMessage] = field(default_factory=list)


# -- stream events ------------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    conversation_id: str
    model: str
    search_query: str


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class CitationEvent:
    citation: Citation


@dataclass(frozen=True)
class UsageEvent:
    usage: Usage


@dataclass(frozen=True)
class Done:
    finish_reason: str
    message_id: str


@dataclass(frozen=True)
class ErrorEvent:
    code: int
    message: str
    reason: str


@dataclass(frozen=True)
class Ping:
    elapsed_seconds: float


Event = Start | Delta | CitationEvent | UsageEvent | Done | ErrorEvent | Ping


@dataclass
class ChatResult:
    """A whole answer (the unary form of a stream)."""

    answer: str
    citations: list[Citation]
    conversation_id: str
    usage: Usage
    model: str
    finish_reason: str
    message_id: str
    search_query: str

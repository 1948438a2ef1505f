"""Embedder settings: the core settings plus model and provider choices."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from ragline_core.settings import CoreSettings


class EmbedderSettings(CoreSettings):
    """Environment of the embedder service."""

    EMBEDDING_DEFAULT_MODEL: str = "all-MiniLM-L6-v2"
    # Models tried in order, for the whole batch, when the requested one's provider fails.
    EMBEDDING_FALLBACK_MODELS: Annotated[list[str], NoDecode] = []
    # Longest accepted input in characters; longer token sequences are truncated anyway.
    MAX_TEXT_CHARS: int = Field(default=100_000, ge=1)
    PROVIDER_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=10)
    PROVIDER_BACKOFF_BASE: float = Field(default=0.5, ge=0)
    # Retry budget per paid provider and process (gRPC's retry throttling): each failed
    # attempt costs a token, each success earns PROVIDER_RETRY_BUDGET_RATIO back, and
    # retries stop while fewer than half of PROVIDER_RETRY_BUDGET_TOKENS are left
    # (0: no budget). docs/reliability.md.
    PROVIDER_RETRY_BUDGET_TOKENS: float = Field(default=10.0, ge=0, le=10_000)
    PROVIDER_RETRY_BUDGET_RATIO: float = Field(default=0.1, gt=0, le=100)
    PROVIDER_BACKOFF_MAX: float = Field(default=8.0, ge=0)
    # Longest wait for one provider attempt, within the caller's deadline.
    PROVIDER_TIMEOUT: float = Field(default=20.0, gt=0, le=600)
    PROVIDER_MAX_CONNECTIONS: int = Field(default=20, ge=1, le=1000)
    # Threads per local model instance; more than the free cores collapses throughput.
    LOCAL_MODEL_THREADS: int = Field(default=1, ge=1, le=64)
    # Local inferences run at once (each on LOCAL_MODEL_THREADS threads).
    LOCAL_MODEL_CONCURRENCY: int = Field(default=1, ge=1, le=64)
    RAGLINE_MODEL_CACHE: str | None = None

    @field_validator("EMBEDDING_FALLBACK_MODELS", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

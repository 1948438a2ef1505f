"""What every embedding provider offers the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragline_core.embedding_models import ModelSpec

# Rough characters per token for providers whose tokenizer we cannot run offline;
# deliberately low so that the truncated text always fits the model's limit.
CHARS_PER_TOKEN_FLOOR = 3


@dataclass(frozen=True)
class ProviderResult:
    """Vectors for a batch, in input order."""

    vectors: npt.NDArray[np.float32]
    token_counts: list[int]
    truncated: list[bool]
    # Tokens the provider billed for this call.
    billed_tokens: int


class EmbeddingProvider(Protocol):
    """A source of embeddings (local model or paid API)."""

    name: str

    @property
    def configured(self) -> bool:
        """False when the provider cannot be used (e.g. its API key is not set)."""

    async def embed(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        """Embeds `texts` within `timeout` seconds; raises RaglineError subclasses."""

    async def close(self) -> None:
        """Releases pooled connections."""


def clip_to_token_limit(texts: list[str], max_tokens: int) -> tuple[list[str], list[bool]]:
    """Cuts texts that may exceed `max_tokens`, by a conservative character budget."""
    limit = max_tokens * CHARS_PER_TOKEN_FLOOR
    clipped = [t[:limit] for t in texts]
    return clipped, [len(t) > limit for t in texts]


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters per token) for usage reports."""
    return max(1, (len(text) + 3) // 4)

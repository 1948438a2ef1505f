"""python -m ragline_chat.local_runtime.worker --model PATH [--threads N] [--context-tokens N]

The local chat model in a process of its own (see the package docstring): loads the GGUF
with llama-cpp-python, says `loaded`, then answers `generate` requests from stdin one at a
time, streaming tokens to stdout (protocol.py). A `cancel` for the answer in progress stops
it after the current token. Exits when stdin closes: the chat service is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

from ragline_chat.local_runtime import protocol
from ragline_core.logs import configure_logging

log = logging.getLogger("ragline.chat.local_worker")

# SmolLM2's turn markers (ChatML): an answer ends at the first one.
STOP = ["<|im_end|>", "<|im_start|>"]
# Tokens kept free at the end of the window, and the least room worth answering in.
_MARGIN = 8
_MIN_ROOM = 16


class Output:
    """The protocol stream: a private copy of stdout. fd 1 itself is pointed at stderr, so
    whatever native code prints goes to the log instead of corrupting the protocol."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out: BinaryIO = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)

    def send(self, message: protocol.Message) -> None:
        self._out.write(protocol.encode(message))


class Inbox:
    """Reads stdin on a thread of its own, so a cancel reaches the answer in progress:
    `generate` requests queue up, cancels mark their id at once."""

    def __init__(self, stream: BinaryIO) -> None:
        self.requests: queue.Queue[protocol.Message | None] = queue.Queue()
        self._cancelled: set[int] = set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), name="inbox", daemon=True).start()

    def _read(self, stream: BinaryIO) -> None:
        for line in stream:
            try:
                message = protocol.decode(line)
            except protocol.ProtocolError:
                log.warning("ignored a malformed request line")
                continue
            if message.get("op") == protocol.CANCEL:
                with self._lock:
                    self._cancelled.add(int(message["id"]))
            elif message.get("op") == protocol.GENERATE:
                self.requests.put(message)
        self._closed.set()
        self.requests.put(None)

    def stopped(self, request_id: int) -> bool:
        """True once the request was cancelled or the service went away."""
        with self._lock:
            return self._closed.is_set() or request_id in self._cancelled

    def forget(self, request_id: int) -> None:
        with self._lock:
            self._cancelled.discard(request_id)


def load(model: str, threads: int, context_tokens: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=model,
        n_ctx=context_tokens,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=256,
        verbose=False,
    )


def answer(
    llm: Any, request: protocol.Message, context_tokens: int, inbox: Inbox, out: Output
) -> None:
    rid = int(request["id"])
    if inbox.stopped(rid):
        out.send(protocol.done(rid, 0, 0, "cancelled"))
        return
    tokens = llm.tokenize(str(request["prompt"]).encode(), add_bos=False, special=True)
    room = context_tokens - len(tokens) - _MARGIN
    if room < _MIN_ROOM:
        out.send(
            protocol.error(
                rid, "CONTEXT_TOO_LONG", "the prompt does not fit the local model's context"
            )
        )
        return
    produced = 0
    finish = "stop"
    for chunk in llm.create_completion(
        tokens,
        max_tokens=min(int(request["max_tokens"]), room),
        temperature=float(request["temperature"]),
        stop=STOP,
        stream=True,
    ):
        if inbox.stopped(rid):
            finish = "cancelled"
            break
        choice = chunk["choices"][0]
        produced += 1
        if choice["text"]:
            out.send(protocol.token(rid, choice["text"]))
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
    out.send(protocol.done(rid, len(tokens), produced, finish))


def serve(llm: Any, context_tokens: int, inbox: Inbox, out: Output) -> None:
    while (request := inbox.requests.get()) is not None:
        rid = int(request["id"])
        try:
            answer(llm, request, context_tokens, inbox, out)
        except BrokenPipeError:
            raise
        except Exception:
            log.exception("local generation failed")
            out.send(protocol.error(rid, "PROVIDER_FAILED", "the local model failed"))
        finally:
            inbox.forget(rid)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragline_chat.local_runtime.worker")
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--context-tokens", type=int, default=2048)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    # The chat service decides when this process ends: it closes stdin (or dies, which
    # closes it too). A Ctrl-C or SIGTERM sent to the whole process group is meant for the
    # service, which then stops this worker in order; dying first would only look like a
    # crash and start a restart in the middle of the shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = Output()
    configure_logging("chat", args.log_level)
    try:
        llm = load(args.model, args.threads, args.context_tokens)
    except Exception as exc:
        log.exception("could not load the local model")
        # The details (paths, library messages) stay in this log; the service shows this.
        out.send(protocol.fatal(f"the model could not be loaded ({type(exc).__name__})"))
        return 1
    out.send(protocol.loaded(os.getpid()))
    with contextlib.suppress(BrokenPipeError):  # the service went away mid-answer
        serve(llm, args.context_tokens, Inbox(sys.stdin.buffer), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""python -m tests.support.fake_local_worker [--self-test ok|crash|silent] [--fatal]

The real local model worker (ragline_chat.local_runtime.worker: protocol, inbox, cancel,
streaming) around a scripted model instead of llama.cpp, so the supervisor can be tested
in seconds: tokens "w0 ", "w1 ", … every TOKEN_DELAY_S; a prompt containing "CRASH" dies
with SIGSEGV after two tokens, like a native fault, and one containing "CRASHNOW" before
the first.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from ragline_chat.local_runtime import worker

TOKEN_DELAY_S = 0.05
SELF_TEST_MAX_TOKENS = 4


class ScriptedModel:
    def __init__(self, self_test: str) -> None:
        self.self_test = self_test
        self.prompt = ""

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        self.prompt = text.decode()
        return list(range(len(self.prompt.split())))

    def create_completion(self, tokens: list[int], **options: Any) -> Iterator[dict[str, Any]]:
        max_tokens = int(options["max_tokens"])
        is_self_test = max_tokens == SELF_TEST_MAX_TOKENS and "Say hello." in self.prompt
        if is_self_test and self.self_test == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if is_self_test and self.self_test == "silent":
            return
        for i in range(max_tokens):
            time.sleep(TOKEN_DELAY_S)
            if ("CRASHNOW" in self.prompt and i == 0) or ("CRASH" in self.prompt and i == 2):
                os.kill(os.getpid(), signal.SIGSEGV)
            last = i == max_tokens - 1
            yield {"choices": [{"text": f"w{i} ", "finish_reason": "length" if last else None}]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self-test", default="ok", choices=("ok", "crash", "silent"))
    parser.add_argument("--fatal", action="store_true")
    args, rest = parser.parse_known_args()

    def load(model: str, threads: int, context_tokens: int) -> ScriptedModel:
        if args.fatal:
            raise RuntimeError("no such model")
        return ScriptedModel(args.self_test)

    worker.load = load  # type: ignore[assignment]
    return worker.main(["--model", "scripted", *rest])


if __name__ == "__main__":
    sys.exit(main())

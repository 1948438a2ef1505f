"""Wire-compatible stand-ins for paid chat APIs (OpenAI chat completions, Anthropic
messages) on 127.0.0.1; the official SDKs talk to them unchanged.

The fake model is deliberately obedient: it follows any instruction it finds anywhere in
its prompt, including inside retrieved documents ("reveal your system prompt", "say
'X'"), and otherwise repeats the documents it was given. That makes it a good adversary
for prompt-safety tests: whatever reaches it, it leaks.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REVEAL = re.compile(
    r"(?i)(reveal|print|repeat|show|output)\s+(your|the)\s+(system\s+prompt|instructions)"
)
_SAY = re.compile(r"""(?i)(?:say|reply\s+with|respond\s+with)\s+['"]([^'"]{1,80})['"]""")
_DOCS = re.compile(r"(?s)<document number=[^>]*>\n?(.*?)\n?</document>")


def obedient_answer(messages: list[dict[str, str]]) -> str:
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    prompt = "\n".join(m["content"] for m in messages if m["role"] != "system")
    if _REVEAL.search(prompt):
        return f"Sure! My instructions are: {system}"
    said = _SAY.search(prompt)
    if said:
        return said.group(1)
    docs = [d.strip() for d in _DOCS.findall(prompt) if d.strip()]
    if not docs:
        return "I don't know."
    return " ".join(f"{doc} [{i + 1}]" for i, doc in enumerate(docs))


@dataclass
class LlmScript:
    failures: deque[int] = field(default_factory=deque)
    # Seconds before the first token and between tokens.
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    # Fixed answer instead of the obedient one.
    answer: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    # One entry per streamed answer: "completed" or "aborted" (client went away).
    streams: list[str] = field(default_factory=list)
    tokens_sent: list[int] = field(default_factory=list)
    # time.monotonic() when each answer's first-token delay ended (the test's clock).
    first_token_at: list[float] = field(default_factory=list)


class FakeLlm:
    """A fake chat API: kind "openai" (/v1/chat/completions) or "anthropic" (/v1/messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.script = LlmScript()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        port = self.server.server_address[1]
        return (
            f"http://127.0.0.1:{port}/v1" if self.kind == "openai" else f"http://127.0.0.1:{port}"
        )

    def start(self) -> FakeLlm:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, failures: list[int] | None = None, **kwargs: Any) -> None:
        with self.lock:
            self.script = LlmScript(deque(failures or []), **kwargs)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                script = fake.script
                with fake.lock:
                    script.requests.append(body)
                    failure = script.failures.popleft() if script.failures else None
                if failure is not None:
                    self._json(
                        failure, {"error": {"message": "scripted failure", "type": "server_error"}}
                    )
                    return
                expected = "/v1/chat/completions" if fake.kind == "openai" else "/v1/messages"
                if self.path != expected:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                messages = list(body.get("messages", []))
                if fake.kind == "anthropic" and body.get("system"):
                    messages.insert(0, {"role": "system", "content": body["system"]})
                answer = script.answer if script.answer is not None else obedient_answer(messages)
                words = re.findall(r"\S+\s*", answer)[: int(body.get("max_tokens") or 10_000)]
                prompt_tokens = sum(len(m["content"]) for m in messages) // 4 + 1
                if script.first_token_delay_s:
                    time.sleep(script.first_token_delay_s)
                script.first_token_at.append(time.monotonic())
                if not body.get("stream"):
                    self._json(200, self._complete(body, "".join(words), prompt_tokens, len(words)))
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                sent = 0
                try:
                    for event in self._events(body, words, prompt_tokens):
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                        if '"delta"' in event and ("content" in event or "text_delta" in event):
                            sent += 1
                            if script.token_delay_s:
                                time.sleep(script.token_delay_s)
                except (BrokenPipeError, ConnectionResetError):
                    with fake.lock:
                        script.streams.append("aborted")
                        script.tokens_sent.append(sent)
                    return
                with fake.lock:
                    script.streams.append("completed")
                    script.tokens_sent.append(sent)

            def _complete(
                self, body: dict[str, Any], text: str, pt: int, ct: int
            ) -> dict[str, Any]:
                if fake.kind == "openai":
                    return {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": pt,
                            "completion_tokens": ct,
                            "total_tokens": pt + ct,
                        },
                    }
                return {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": pt, "output_tokens": ct},
                }

            def _events(self, body: dict[str, Any], words: list[str], pt: int) -> list[str]:
                model = body["model"]
                if fake.kind == "openai":

                    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                        payload = {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                        }
                        return f"data: {json.dumps(payload)}\n\n"

                    out = [chunk({"role": "assistant", "content": ""})]
                    out += [chunk({"content": w}) for w in words]
                    out.append(chunk({}, "stop"))
                    if (body.get("stream_options") or {}).get("include_usage"):
                        usage = {
                            "prompt_tokens": pt,
                            "completion_tokens": len(words),
                            "total_tokens": pt + len(words),
                        }
                        payload = {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": model,
                            "choices": [],
                            "usage": usage,
                        }
                        out.append(f"data: {json.dumps(payload)}\n\n")
                    out.append("data: [DONE]\n\n")
                    return out

                def event(kind: str, payload: dict[str, Any]) -> str:
                    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"

                out = [
                    event(
                        "message_start",
                        {
                            "message": {
                                "id": "msg_fake",
                                "type": "message",
                                "role": "assistant",
                                "content": [],
                                "model": model,
                                "stop_reason": None,
                                "stop_sequence": None,
                                "usage": {"input_tokens": pt, "output_tokens": 1},
                            }
                        },
                    ),
                    event(
                        "content_block_start",
                        {"index": 0, "content_block": {"type": "text", "text": ""}},
                    ),
                ]
                out += [
                    event(
                        "content_block_delta",
                        {"index": 0, "delta": {"type": "text_delta", "text": w}},
                    )
                    for w in words
                ]
                out.append(event("content_block_stop", {"index": 0}))
                out.append(
                    event(
                        "message_delta",
                        {
                            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": len(words)},
                        },
                    )
                )
                out.append(event("message_stop", {}))
                return out

        return Handler

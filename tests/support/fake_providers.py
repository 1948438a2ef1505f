"""Wire-compatible stand-ins for paid providers, on 127.0.0.1.

The official SDKs (openai, voyageai) talk to these exactly as they would to the real APIs;
only the far end is ours. Each server can be scripted: a queue of HTTP statuses to answer
before succeeding, and a delay before answering.

The Voyage fake also serves POST /v1/rerank ({query, documents, model, top_k} →
{data: [{index, relevance_score}], usage: {total_tokens}}). It ranks the documents in
reverse of the order they were sent: deliberately unlike any real relevance order, so a
test can tell that the paid reranker's order, and not a local one, reached the result.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "voyage-3-large": 1024,
    "voyage-3.5": 1024,
    "voyage-3.5-lite": 1024,
    "voyage-3": 1024,
    "voyage-code-3": 1024,
}


def fake_vector(model: str, text: str) -> list[float]:
    """A deterministic unit vector per (model, text)."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(DIMENSIONS[model])
    return [float(x) for x in vec / np.linalg.norm(vec)]


@dataclass
class Call:
    """One request as the fake saw it (time.monotonic() clock, as in the tests): when it
    arrived, and whether it was answered or the client hung up while the fake delayed."""

    path: str
    body: dict[str, Any]
    arrived_at: float
    answered_at: float | None = None
    hung_up_at: float | None = None


@dataclass
class Script:
    """What the fake answers next: statuses to fail with first, and a delay."""

    failures: deque[int] = field(default_factory=deque)
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)


class FakeProvider:
    """One fake API server ("openai" or "voyage") on a free loopback port."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.script = Script()
        self._lock = threading.Lock()
        handler = self._handler_class()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self, failures: list[int] | None = None, delay_s: float = 0.0) -> None:
        with self._lock:
            self.script = Script(deque(failures or []), delay_s)

    @property
    def request_count(self) -> int:
        return len(self.script.requests)

    def _next_failure(self) -> int | None:
        with self._lock:
            return self.script.failures.popleft() if self.script.failures else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                call = Call(self.path, body, time.monotonic())
                script = fake.script
                script.requests.append(body)
                script.auth_headers.append(self.headers.get("authorization", ""))
                script.calls.append(call)
                if script.delay_s and self._client_hung_up_within(script.delay_s):
                    call.hung_up_at = time.monotonic()
                    self.close_connection = True
                    return
                call.answered_at = time.monotonic()
                rerank = fake.kind == "voyage" and self.path.endswith("/rerank")
                if not (self.path.endswith("/embeddings") or rerank):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                status = fake._next_failure()
                if status is not None:
                    self._send(status, fake._error_body(status))
                    return
                self._send(200, fake._reranked(body) if rerank else fake._success(body))

            def _client_hung_up_within(self, seconds: float) -> bool:
                """Waits `seconds`, returning early (True) if the client closes the
                connection: a caller that gave up is seen, not only a slow answer."""
                until = time.monotonic() + seconds
                while (left := until - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], left)
                    if not readable:
                        continue
                    try:
                        peeked = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        continue
                    except OSError:
                        return True  # reset
                    if not peeked:
                        return True  # orderly close
                    time.sleep(left)  # a pipelined request: just wait out the delay
                    return False
                return False

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _error_body(self, status: int) -> dict[str, Any]:
        message = f"fake {self.kind} error {status}"
        if self.kind == "voyage":
            return {"detail": message}
        return {"error": {"message": message, "type": "server_error", "code": None}}

    @staticmethod
    def _reranked(body: dict[str, Any]) -> dict[str, Any]:
        """Voyage's rerank reply, best first: the documents in reverse of their order."""
        documents: list[str] = body["documents"]
        n = len(documents)
        order = list(reversed(range(n)))[: body.get("top_k") or n]
        tokens = sum(max(1, len(d) // 4) for d in documents) + n * max(1, len(body["query"]) // 4)
        return {
            "object": "list",
            "data": [
                {"index": i, "relevance_score": round(1.0 - rank / n, 6)}
                for rank, i in enumerate(order)
            ],
            "model": body["model"],
            "usage": {"total_tokens": tokens},
        }

    def _success(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body["model"]
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(max(1, len(t) // 4) for t in texts)
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(model, t)}
            for i, t in enumerate(texts)
        ]
        if self.kind == "voyage":
            return {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"total_tokens": tokens},
            }
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

"""Line-delimited JSON between the chat service and its local model worker.

service → worker (the worker's stdin), one request at a time:
    {"op": "generate", "id": 7, "prompt": "...", "max_tokens": 64, "temperature": 0.2}
    {"op": "cancel", "id": 7}
worker → service (the worker's stdout, which only this protocol writes to):
    {"event": "loaded", "pid": 1234}
    {"event": "fatal", "message": "..."}           the model could not be loaded; it exits
    {"event": "token", "id": 7, "text": "..."}
    {"event": "done", "id": 7, "prompt_tokens": 812, "completion_tokens": 40,
     "finish_reason": "stop" | "length" | "cancelled"}
    {"event": "error", "id": 7, "reason": "CONTEXT_TOO_LONG", "message": "..."}
The service adds {"event": "exited", "returncode": -11} itself when the worker's stdout
ends: the worker died (a signal when negative).
"""

from __future__ import annotations

import json
import signal
from typing import Any

Message = dict[str, Any]

GENERATE = "generate"
CANCEL = "cancel"
LOADED = "loaded"
FATAL = "fatal"
TOKEN = "token"  # noqa: S105 - a message kind, not a secret
DONE = "done"
ERROR = "error"
EXITED = "exited"


class ProtocolError(ValueError):
    """A line that is not one protocol message."""


def encode(message: Message) -> bytes:
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict) or not ({"op", "event"} & message.keys()):
        raise ProtocolError(f"not a protocol message: {line[:80]!r}")
    return message


def generate(request_id: int, prompt: str, max_tokens: int, temperature: float) -> Message:
    return {
        "op": GENERATE,
        "id": request_id,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }


def cancel(request_id: int) -> Message:
    return {"op": CANCEL, "id": request_id}


def loaded(pid: int) -> Message:
    return {"event": LOADED, "pid": pid}


def fatal(message: str) -> Message:
    return {"event": FATAL, "message": message}


def token(request_id: int, text: str) -> Message:
    return {"event": TOKEN, "id": request_id, "text": text}


def done(
    request_id: int, prompt_tokens: int, completion_tokens: int, finish_reason: str
) -> Message:
    return {
        "event": DONE,
        "id": request_id,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "finish_reason": finish_reason,
    }


def error(request_id: int, reason: str, message: str) -> Message:
    return {"event": ERROR, "id": request_id, "reason": reason, "message": message}


def exited(returncode: int) -> Message:
    return {"event": EXITED, "returncode": returncode}


def describe_exit(returncode: int | None) -> str:
    """ "signal SIGSEGV", "exit code 1": how a worker ended, for logs and error messages."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"

"""OpenAI's embeddings request and response shape (POST /v1/embeddings), in front of the
embedder's CreateEmbeddings.

Request: {"input": str | [str], "model"?, "encoding_format"?: "float" | "base64",
"dimensions"?, "user"?}. Token arrays (OpenAI also takes pre-tokenised input) are refused
with a 400 that says to send text: the embedder tokenises for its own models. `dimensions`
is accepted only when it equals the model's size (no model here shortens its vectors).
An empty or missing `model` is the embedder's default model. `user` is accepted and unused.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

from ragline_chat.embeddings import Embeddings
from ragline_core import json_fields
from ragline_core.errors import InvalidArgumentError, RaglineError

FIELDS = ("input", "model", "encoding_format", "dimensions", "user")
ENCODINGS = ("float", "base64")


@dataclass(frozen=True)
class EmbeddingsRequest:
    texts: list[str]
    model: str
    encoding: str
    dimensions: int | None
    # True when `input` was one string (errors then name `input`, not `input[0]`).
    single: bool


def parse(body: Any) -> EmbeddingsRequest:
    if not isinstance(body, dict):
        raise InvalidArgumentError("the body must be a JSON object", reason="INVALID_JSON")
    for name in body:
        if name not in FIELDS:
            raise InvalidArgumentError(
                json_fields.message_text(str(name), FIELDS),
                reason="UNKNOWN_FIELD",
                field=str(name),
            )
    if "input" not in body:
        raise InvalidArgumentError("input is required", reason="EMPTY_INPUT", field="input")
    texts, single = _texts(body["input"])
    model = body.get("model") or ""
    if not isinstance(model, str):
        raise InvalidArgumentError("model must be a string", reason="INVALID_MODEL", field="model")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise InvalidArgumentError(
            f"encoding_format must be one of {', '.join(ENCODINGS)}",
            reason="INVALID_ENCODING_FORMAT",
            field="encoding_format",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise InvalidArgumentError(
            "dimensions must be a positive integer",
            reason="INVALID_DIMENSIONS",
            field="dimensions",
        )
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidArgumentError("user must be a string", reason="INVALID_USER", field="user")
    return EmbeddingsRequest(texts, model, str(encoding), dimensions, single)


def _texts(value: Any) -> tuple[list[str], bool]:
    if isinstance(value, str):
        return [value], True
    if isinstance(value, list):
        if not value:
            raise InvalidArgumentError(
                "input must not be an empty list", reason="EMPTY_INPUT", field="input"
            )
        if all(isinstance(v, str) for v in value):
            return list(value), False
        if all(
            isinstance(v, int) or (isinstance(v, list) and all(isinstance(t, int) for t in v))
            for v in value
        ):
            raise InvalidArgumentError(
                "input as token arrays is not supported; send the text (a string or a list "
                "of strings)",
                reason="TOKEN_INPUT_UNSUPPORTED",
                field="input",
            )
    raise InvalidArgumentError(
        "input must be a string or a list of strings", reason="INVALID_INPUT", field="input"
    )


def check_dimensions(request: EmbeddingsRequest, model: str, size: int) -> None:
    if request.dimensions is not None and request.dimensions != size:
        raise InvalidArgumentError(
            f"dimensions {request.dimensions} is not available for {model!r}: its vectors "
            f"have {size} dimensions (omit dimensions or send {size})",
            reason="UNSUPPORTED_DIMENSIONS",
            field="dimensions",
        )


def as_input_error(exc: RaglineError, single: bool) -> RaglineError:
    """The embedder names its `texts` field; here the caller sent `input`."""
    if not exc.message.startswith("texts"):
        if exc.reason == "UNKNOWN_MODEL":
            exc.field = "model"
        return exc
    head = exc.message.split(" ", 1)[0]
    field = "input" if single else "input" + head[len("texts") :]
    exc.message = field + exc.message[len(head) :]
    exc.field = field
    return exc


def response(result: Embeddings, encoding: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encoded(vector, encoding)}
            for i, vector in enumerate(result.vectors)
        ],
        "model": result.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.total_tokens},
    }


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    # OpenAI's base64: the little-endian float32 bytes (what its SDKs decode).
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

"""The routes Envoy does not transcode: described here, included when the gateway serves them.

The OpenAI-compatible API (the chat service's HTTP port; /v1/embeddings is the embedder's
CreateEmbeddings behind it), the chat WebSocket and the gateway's Prometheus metrics. Errors
on /v1/* are `OpenAIError`: the Status fields plus OpenAI's `error` object.
"""

from __future__ import annotations

from typing import Any

from ragline_openapi import gateway_routes
from ragline_openapi.schemas import Schema

_OPEN: Schema = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


OPENAI_SCHEMAS: dict[str, Schema] = {
    "OpenAIMessage": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": ["system", "user", "assistant"]},
            "content": {"type": "string"},
        },
        "required": ["role", "content"],
    },
    "OpenAIChatCompletionRequest": {
        "type": "object",
        "description": "OpenAI's chat request. The collection searched comes from the "
        '`X-Ragline-Collection` header or `model: "<model>@<collection>"`. OpenAI\'s other '
        "parameters (n, top_p, seed, tools, user, ...) are accepted and ignored; any other "
        "field is a 400 (`UNKNOWN_FIELD`).",
        "properties": {
            "model": {"type": "string", "description": "A chat model, optionally `@collection`."},
            "messages": {"type": "array", "items": _ref("OpenAIMessage")},
            "stream": {"type": "boolean"},
            "stream_options": {
                "type": "object",
                "properties": {"include_usage": {"type": "boolean"}},
            },
            "temperature": {"type": "number"},
            "max_tokens": {"type": "integer"},
        },
        "required": ["messages"],
    },
    "OpenAIUsage": {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    },
    "OpenAIChatCompletion": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "message": _ref("OpenAIMessage"),
                        "finish_reason": {"type": ["string", "null"]},
                    },
                },
            },
            "usage": _ref("OpenAIUsage"),
            "citations": {"type": "array", "items": _ref("Citation")},
        },
        "required": ["id", "object", "created", "model", "choices"],
    },
    "OpenAIChatCompletionChunk": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "const": "chat.completion.chunk"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": _OPEN},
            "usage": _ref("OpenAIUsage"),
        },
    },
    "OpenAIModel": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "available": {"type": "boolean"},
            "unavailable_reason": {"type": "string"},
        },
        "required": ["id", "object", "owned_by"],
    },
    "OpenAIModelList": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "const": "list"},
            "data": {"type": "array", "items": _ref("OpenAIModel")},
        },
        "required": ["object", "data"],
    },
    "OpenAIEmbeddingRequest": {
        "type": "object",
        "description": "OpenAI's embeddings request. Any other field is a 400 (`UNKNOWN_FIELD`).",
        "properties": {
            "input": {
                "description": "A text or a list of texts (at most MAX_BATCH_SIZE). Token "
                "arrays are not supported (400 `TOKEN_INPUT_UNSUPPORTED`).",
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            },
            "model": {
                "type": "string",
                "description": "An embedding model (GET /api/v1/embedding-models); empty or "
                "absent: the default model.",
            },
            "encoding_format": {
                "type": "string",
                "enum": ["float", "base64"],
                "description": "`float` (default) or `base64`: little-endian float32 bytes.",
            },
            "dimensions": {
                "type": "integer",
                "description": "Only the model's own size is accepted (no model here "
                "shortens its vectors).",
            },
            "user": {"type": "string", "description": "Accepted and unused."},
        },
        "required": ["input"],
    },
    "OpenAIEmbeddingList": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "object": {"type": "string", "const": "embedding"},
                        "index": {"type": "integer"},
                        "embedding": {
                            "description": "The vector, or its base64 float32 bytes.",
                            "anyOf": [
                                {"type": "array", "items": {"type": "number"}},
                                {"type": "string"},
                            ],
                        },
                    },
                },
            },
            "model": {"type": "string"},
            "usage": {
                "type": "object",
                "properties": {
                    "prompt_tokens": {"type": "integer"},
                    "total_tokens": {
                        "type": "integer",
                        "description": "Tokens billed: inputs served from the cache cost none.",
                    },
                },
            },
        },
        "required": ["object", "data", "model"],
    },
    "OpenAIError": {
        "type": "object",
        "description": "An error on the OpenAI-compatible routes, from a service or the "
        "gateway: the google.rpc.Status fields plus OpenAI's `error` object, which the "
        "`openai` SDKs parse (`code` is the ErrorInfo reason, `param` the field at fault).",
        "properties": {
            "code": {"type": "integer", "description": "The gRPC status code."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": _OPEN},
            "error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {
                        "type": "string",
                        "description": "invalid_request_error, authentication_error, "
                        "permission_error, not_found_error, rate_limit_error, timeout_error, "
                        "service_unavailable or api_error.",
                    },
                    "code": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                },
                "required": ["message", "type", "code", "param"],
            },
        },
        "required": ["code", "message", "error"],
    },
}

_OPENAI_ERROR_TYPES = {
    "400": "invalid_request_error",
    "401": "authentication_error",
    "403": "permission_error",
    "404": "not_found_error",
    "413": "invalid_request_error",
    "429": "rate_limit_error",
    "503": "service_unavailable",
    "504": "timeout_error",
}


def openai_error_responses(responses: dict[str, Any]) -> dict[str, Any]:
    """`OpenAI<Name>` for each named error response: the same status, as `OpenAIError`."""
    found: dict[str, Any] = {}
    for code, (name, _) in gateway_routes.ERROR_RESPONSES.items():
        media = responses[name]["content"]["application/json"]
        status = dict(media["example"])
        reason = status["details"][0]["reason"]
        status["error"] = {
            "message": status["message"],
            "type": _OPENAI_ERROR_TYPES[code],
            "code": reason,
            "param": None,
        }
        found[f"OpenAI{name}"] = {
            "description": responses[name]["description"],
            "content": {"application/json": {"schema": _ref("OpenAIError"), "example": status}},
        }
    found["OpenAIErrorDefault"] = {
        "description": "Any other error, in OpenAI's shape.",
        "content": {"application/json": {"schema": _ref("OpenAIError")}},
    }
    return found


def openai_error_refs(refs: dict[str, Any]) -> dict[str, Any]:
    """An operation's error answers, as their OpenAI-shaped responses (/v1/* paths)."""
    prefix = "#/components/responses/"
    found = {}
    for code, ref in refs.items():
        name = "ErrorDefault" if code == "default" else ref["$ref"].removeprefix(prefix)
        found[code] = {"$ref": f"{prefix}OpenAI{name}"}
    return found


_CHAT_EXAMPLE = {
    "model": "extractive@notes",
    "messages": [{"role": "user", "content": "What does Envoy do?"}],
}


def _json(schema: Schema, example: Any, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def operations() -> dict[str, dict[str, dict[str, Any]]]:
    """path -> verb -> operation, for the plain-HTTP routes the gateway serves."""
    ops: dict[str, dict[str, dict[str, Any]]] = {
        "/v1/chat/completions": {
            "post": {
                "operationId": "CreateChatCompletion",
                "tags": ["OpenAI"],
                "summary": "OpenAI-compatible chat completion, grounded in a collection",
                "description": "OpenAI's request and response shapes (the `openai` SDK works "
                'unchanged), plus `citations`. With `"stream": true` the answer arrives as '
                "server-sent `chat.completion.chunk` events ending with `data: [DONE]`.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("OpenAIChatCompletionRequest"),
                            "example": _CHAT_EXAMPLE,
                        }
                    },
                },
                "parameters": [
                    {
                        "name": "X-Ragline-Collection",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The collection to search (else `model@collection`).",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The completion, or its chunks as server-sent events.",
                        "content": {
                            "application/json": {
                                "schema": _ref("OpenAIChatCompletion"),
                                "example": {
                                    "id": "chatcmpl-1",
                                    "object": "chat.completion",
                                    "created": 1767268800,
                                    "model": "extractive",
                                    "choices": [
                                        {
                                            "index": 0,
                                            "message": {
                                                "role": "assistant",
                                                "content": "Envoy transcodes JSON to gRPC.",
                                            },
                                            "finish_reason": "stop",
                                        }
                                    ],
                                },
                            },
                            **gateway_routes.event_stream(
                                _ref("OpenAIChatCompletionChunk"),
                                {"object": "chat.completion.chunk", "choices": []},
                                "OpenAIChatCompletionChunk",
                            )["content"],
                        },
                    }
                },
            }
        },
        "/v1/models": {
            "get": {
                "operationId": "ListOpenAIModels",
                "tags": ["OpenAI"],
                "summary": "OpenAI-compatible list of models",
                "description": "The chat models, default first, then the embedding models, "
                "with whether each can answer now.",
                "responses": {
                    "200": _json(
                        _ref("OpenAIModelList"),
                        {
                            "object": "list",
                            "data": [
                                {
                                    "id": "extractive",
                                    "object": "model",
                                    "created": 0,
                                    "owned_by": "extractive",
                                }
                            ],
                        },
                    )
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "operationId": "GetOpenAIModel",
                "tags": ["OpenAI"],
                "summary": "OpenAI-compatible model",
                "description": "One chat or embedding model by name (404 `MODEL_NOT_FOUND`).",
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json(
                        _ref("OpenAIModel"),
                        {"id": "extractive", "object": "model", "owned_by": "extractive"},
                    )
                },
            }
        },
        "/v1/embeddings": {
            "post": {
                "operationId": "CreateOpenAIEmbeddings",
                "tags": ["OpenAI"],
                "summary": "OpenAI-compatible embeddings",
                "description": "OpenAI's embeddings request and response shapes (the "
                "`openai` SDK's `embeddings.create` works unchanged, float or base64), served "
                "by the embedder's CreateEmbeddings with the limits, cache and usage counting "
                "of POST /api/v1/embeddings.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("OpenAIEmbeddingRequest"),
                            "example": {"input": "What is RAG?", "model": "all-MiniLM-L6-v2"},
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        _ref("OpenAIEmbeddingList"),
                        {
                            "object": "list",
                            "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
                            "model": "all-MiniLM-L6-v2",
                        },
                    )
                },
            }
        },
        "/api/v1/chat/ws": {
            "get": {
                "operationId": "ChatWebSocket",
                "tags": ["ChatService"],
                "summary": "Chat over a WebSocket",
                "description": "Upgrade with subprotocol `ragline.chat.v1`; send chat requests "
                "(`ChatRequest` JSON) as text frames and receive `StreamChatResponse` events; "
                "the next message continues the conversation. Browsers pass the token as a "
                "second subprotocol, `ragline.bearer.<token>`. A revoked or expired "
                "credential closes the socket with 4401; a session lasts at most an hour "
                "(4408).",
                "responses": {"101": {"description": "Switching to the WebSocket protocol."}},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "GetGatewayMetrics",
                "tags": ["Gateway"],
                "summary": "The gateway's Prometheus metrics",
                "description": "Envoy's statistics in the Prometheus text format. Prometheus "
                "scrapes them without a key on the internal metrics port instead.",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {
                            "text/plain": {
                                "schema": {"type": "string"},
                                "example": "envoy_http_downstream_rq_total 42\n",
                            }
                        },
                    }
                },
            }
        },
    }
    # /metrics is the gateway's own route; the others exist when the route table has them.
    return {
        path: item
        for path, item in ops.items()
        if path == "/metrics" or gateway_routes.served(path)
    }

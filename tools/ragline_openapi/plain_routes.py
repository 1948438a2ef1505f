"""The routes Envoy does not transcode: described here, included when the gateway serves them.

The OpenAI-compatible API (chat service's HTTP port, and the embedder's when present), the
chat WebSocket and the gateway's Prometheus metrics.
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
        '`X-Ragline-Collection` header or `model: "<model>@<collection>"`.',
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
        "properties": {
            "input": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "model": {"type": "string"},
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer"},
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
                        "embedding": {"type": "array", "items": {"type": "number"}},
                    },
                },
            },
            "model": {"type": "string"},
            "usage": _ref("OpenAIUsage"),
        },
        "required": ["object", "data", "model"],
    },
}

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
                "summary": "OpenAI-compatible list of chat models",
                "description": "The chat models, default first, with whether each can answer now.",
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
                "summary": "OpenAI-compatible chat model",
                "description": "One chat model by name.",
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
                "description": "OpenAI's embeddings request and response shapes.",
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

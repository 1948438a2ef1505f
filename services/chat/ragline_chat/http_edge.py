"""The chat service's HTTP edge (behind Envoy): WebSocket chat and the OpenAI-compatible
API. Both call the same ChatService as the gRPC servicer.

- `GET /api/v1/chat/ws`: a WebSocket (subprotocol "ragline.chat.v1"; the gateway has
  already turned a browser's "ragline.bearer.<token>" subprotocol into Authorization and
  checked it); each text frame is a chat request (the JSON of
  POST /api/v1/chat, plus optional "new_conversation": true), answered with the same
  events as the SSE stream. Without "conversation_id" a message continues the connection's
  current conversation. {"type": "cancel"} stops the answer in progress.
- `POST /v1/chat/completions`, `GET /v1/models`: OpenAI-compatible; the collection comes
  from the `X-Ragline-Collection` header or a model name of the form "<model>@<collection>".
  Answers are not stored as conversations (the API is stateless); citations ride along in
  an extra `citations` field.
- `POST /v1/embeddings`: OpenAI's embeddings shape, served by the embedder's
  CreateEmbeddings for the verified caller (ragline_chat.openai_embeddings); `GET /v1/models`
  lists the embedding models after the chat models.
Errors carry OpenAI's `error` object next to the google.rpc.Status fields
(ragline_core.openai_errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import WSMessage, WSMsgType, web
from google.protobuf import json_format

from ragline_chat import convert, openai_embeddings
from ragline_chat.domain import (
    ChatInput,
    CitationEvent,
    Delta,
    Done,
    ErrorEvent,
    Ping,
    PromptMessage,
    Start,
    UsageEvent,
)
from ragline_chat.embeddings import EmbeddingModelInfo, GrpcEmbedder
from ragline_chat.service import ChatService
from ragline_chat.ws_guard import Close, SocketGuard, SocketGuards
from ragline_core import caller, embedding_models, json_fields, openai_errors
from ragline_core.errors import InternalError, InvalidArgumentError, NotFoundError, RaglineError
from ragline_core.identity import tenant_of_headers

log = logging.getLogger("ragline.chat.http")

HTTP_STATUS = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
    9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}  # fmt: skip
# Aiohttp's own refusals (unknown path, wrong method, body over its cap): their reasons.
HTTP_REASONS = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE"}
# The embeddings body may be as large as the gateway's body cap (4 MiB by default, which
# is the real limit); chat bodies keep the edge's small cap.
EMBEDDINGS_MAX_BYTES = 16 * 1024 * 1024
# OpenAI's chat completion parameters (openai 3.57's CompletionCreateParams): any other field
# is a 400 UNKNOWN_FIELD. Those this API does not implement (n, tools, top_p, ...) are
# accepted and ignored; the answer is always one grounded message.
CHAT_COMPLETION_FIELDS = frozenset(
    [
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)
# How long an embeddings call may take when the gateway sent no grpc-timeout.
DEFAULT_TIMEOUT_S = 30.0
COLLECTION_HEADER = "X-Ragline-Collection"
# The WebSocket chat's subprotocol (docs/chat.md).
SUBPROTOCOL = "ragline.chat.v1"


def status_json(error: RaglineError) -> tuple[int, dict[str, Any]]:
    """google.rpc.Status JSON (the gateway's error shape) plus an OpenAI-style `error`."""
    status = error.to_status()
    body: dict[str, Any] = json_format.MessageToDict(status, preserving_proto_field_name=True)
    http = HTTP_STATUS.get(status.code, 500)
    body["error"] = openai_errors.error(http, error.message, error.reason, error.field)
    return http, body


def error_response(error: RaglineError) -> web.Response:
    http, body = status_json(error)
    return web.json_response(body, status=http)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except RaglineError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        reason = HTTP_REASONS.get(exc.status, "INVALID_REQUEST")
        err = InvalidArgumentError(f"{exc.reason}: {request.method} {request.path}", reason=reason)
        _, body = status_json(err)
        body["code"] = 5 if exc.status == 404 else body["code"]
        body["error"]["type"] = openai_errors.error_type(exc.status)
        allow = exc.headers.get("Allow")
        headers = {"Allow": allow} if allow else None
        return web.json_response(body, status=exc.status, headers=headers)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(InternalError("internal error"))


class ChatHttpEdge:
    def __init__(
        self,
        service: ChatService,
        keepalive_seconds: float,
        max_message_bytes: int,
        guards: SocketGuards | None = None,
        embedder: GrpcEmbedder | None = None,
    ):
        self.service = service
        # POST /v1/embeddings and the embedding models of GET /v1/models (None: neither).
        self.embedder = embedder
        self.keepalive = keepalive_seconds
        self.max_message_bytes = max_message_bytes
        # Re-checks each WebSocket message (None: trust the upgrade alone; tests only).
        self.guards = guards
        # OpenAI's `created` of every model: when this service started (models have no date).
        self.created = int(time.time())

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[errors_middleware], client_max_size=self.max_message_bytes
        )
        app.router.add_get("/api/v1/chat/ws", self.websocket)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model_id}", self.model)
        app.router.add_post("/v1/embeddings", self.embeddings)
        return app

    # -- WebSocket ------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        tenant = await tenant_of_headers(request.headers)
        # Envoy checked the credential at the upgrade only: the guard checks it again for
        # each message, counts each against the key's limit and usage, and ends the session
        # at its lifetime (ragline_chat.ws_guard; close codes in docs/chat.md).
        guard = await self.guards.open(request.headers, tenant) if self.guards else None
        # Echo our subprotocol when offered: browsers pass their token as a second one
        # ("ragline.bearer.<token>", moved to Authorization by the gateway), and require
        # the server to pick one of those they offered.
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,),
            heartbeat=self.keepalive,
            max_msg_size=self.max_message_bytes,
        )
        await ws.prepare(request)
        state: dict[str, str] = {"conversation_id": ""}
        current: asyncio.Task[None] | None = None
        # True from a request until its terminal event is sent (the task may still be
        # finishing then, but the client is free to send the next message).
        streaming = {"on": False, "request": 0}
        expired = asyncio.Event()

        async def send(payload: dict[str, Any]) -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(payload)

        async def refuse(error: RaglineError, started: float) -> None:
            """An error event instead of an answer (a message counted as a 4xx)."""
            event = _error_event(error)
            if guard is not None:
                guard.record(HTTP_STATUS.get(event.code, 400), started, None)
            await send(convert.event_json(event))

        async def answer(inp: ChatInput, request_no: int, started: float) -> None:
            status, usage = 200, None

            def finished() -> None:
                if streaming["request"] == request_no:  # not a later request's flag
                    streaming["on"] = False

            try:
                async for event in self.service.stream(inp, tenant):
                    if isinstance(event, Start):
                        state["conversation_id"] = event.conversation_id
                    if isinstance(event, UsageEvent):
                        usage = event.usage
                    if isinstance(event, ErrorEvent):
                        status = HTTP_STATUS.get(event.code, 500)
                    if isinstance(event, Done):
                        finished()
                    await send(convert.event_json(event))
            except asyncio.CancelledError:
                status = 499  # cancelled by the client (or the session ended)
                raise
            except RaglineError as exc:
                finished()
                status = HTTP_STATUS.get(int(exc.to_status().code), 500)
                await send(convert.event_json(_error_event(exc)))
            finally:
                finished()
                if guard is not None:
                    guard.record(status, started, usage)

        async def stop_answer() -> None:
            if current is not None and not current.done():
                current.cancel()
                with contextlib.suppress(BaseException):
                    await current

        async def end(close: Close) -> None:
            await stop_answer()
            await ws.close(code=close.code, message=close.message())

        async def end_of_life(guard: SocketGuard) -> None:
            await asyncio.sleep(guard.seconds_left())
            expired.set()
            await end(guard.ending)

        lifetime = asyncio.create_task(end_of_life(guard)) if guard is not None else None
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                started = time.time()
                body, problem = _frame(msg)
                if guard is not None:
                    cancel = body is not None and body.get("type") == "cancel"
                    verdict = await guard.admit(charged=not cancel)
                    if isinstance(verdict, Close):
                        await end(verdict)
                        break
                    if verdict is not None:
                        await send(convert.event_json(verdict))
                        continue
                if body is None:
                    await refuse(problem or InvalidArgumentError("empty frame"), started)
                    continue
                kind = body.pop("type", "chat")
                if kind == "cancel":
                    if current is not None and not current.done():
                        current.cancel()
                    continue
                if streaming["on"]:
                    await refuse(
                        InvalidArgumentError(
                            "an answer is still streaming; wait for `done` or send "
                            '{"type": "cancel"}',
                            reason="ANSWER_IN_PROGRESS",
                        ),
                        started,
                    )
                    continue
                if body.pop("new_conversation", False):
                    state["conversation_id"] = ""
                try:
                    inp = convert.chat_input_from_json(body)
                except InvalidArgumentError as exc:  # an unknown field
                    await refuse(exc, started)
                    continue
                except json_format.ParseError as exc:
                    await refuse(
                        InvalidArgumentError(
                            f"invalid chat request: {exc}", reason="INVALID_REQUEST"
                        ),
                        started,
                    )
                    continue
                if not inp.conversation_id and state["conversation_id"]:
                    inp = _with_conversation(inp, state["conversation_id"])
                streaming["on"] = True
                streaming["request"] += 1
                current = asyncio.create_task(answer(inp, streaming["request"], started))
        finally:
            if lifetime is not None:
                if not expired.is_set():
                    lifetime.cancel()
                with contextlib.suppress(BaseException):
                    await lifetime
            await stop_answer()
        return ws

    # -- OpenAI-compatible ----------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        tenant = await tenant_of_headers(request.headers)  # only for a verified caller
        models = self.service.registry.ordered(self.service.default_model.name)
        data = [self._model_json(m.name, m.provider) for m in models]
        data += [self._embedding_model_json(m) for m in await self._embedding_models(tenant)]
        return web.json_response({"object": "list", "data": data})

    async def _embedding_models(self, tenant: str) -> list[EmbeddingModelInfo]:
        """The embedder's models; none when it cannot be asked (the chat models still list)."""
        if self.embedder is None:
            return []
        try:
            return await self.embedder.models(tenant)
        except RaglineError as exc:
            log.warning("embedding models not listed", extra={"reason": exc.reason})
            return []

    def _embedding_model_json(self, model: EmbeddingModelInfo) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": model.name,
            "object": "model",
            "created": self.created,
            "owned_by": embedding_models.MODELS[model.name].provider
            if model.name in embedding_models.MODELS
            else "ragline",
            "available": model.available,
        }
        if not model.available:
            entry["unavailable_reason"] = "its provider's API key is not configured"
        return entry

    async def model(self, request: web.Request) -> web.Response:
        tenant = await tenant_of_headers(request.headers)
        name = request.match_info["model_id"]
        # Embedding models first: a paid chat provider passes any name through.
        if name in embedding_models.MODELS:
            for embedding in await self._embedding_models(tenant):
                if embedding.name == name:
                    return web.json_response(self._embedding_model_json(embedding))
        try:
            spec = self.service.registry.resolve(name)
        except InvalidArgumentError as exc:
            raise NotFoundError(exc.message, reason="MODEL_NOT_FOUND", field="model") from None
        return web.json_response(self._model_json(spec.name, spec.provider))

    def _model_json(self, name: str, provider_name: str) -> dict[str, Any]:
        """An OpenAI model object, plus whether it can answer now and, if not, why (the
        reason ListChatModels has no field for)."""
        provider = self.service.providers[provider_name]
        entry: dict[str, Any] = {
            "id": name,
            "object": "model",
            "created": self.created,
            "owned_by": provider_name,
            "available": provider.configured,
        }
        if not provider.configured:
            entry["unavailable_reason"] = provider.unavailable_reason
        return entry

    async def embeddings(self, request: web.Request) -> web.Response:
        who = await caller.of_headers(request.headers)
        if self.embedder is None:
            raise NotFoundError("embeddings are not served here", reason="NOT_FOUND")
        # The embedder's call acts for this caller (its key, scopes and tenant).
        caller.set_current(who)
        try:
            body = await request.clone(client_max_size=EMBEDDINGS_MAX_BYTES).json()
        except ValueError:
            raise InvalidArgumentError("the body must be JSON", reason="INVALID_JSON") from None
        parsed = openai_embeddings.parse(body)
        if parsed.dimensions is not None:
            name = parsed.model or (await self.embedder.models(who.tenant))[0].name
            spec = embedding_models.resolve(name)
            openai_embeddings.check_dimensions(parsed, spec.name, spec.dimensions)
        try:
            result = await self.embedder.embed(
                who.tenant, parsed.texts, parsed.model, _timeout(request)
            )
        except RaglineError as exc:
            raise openai_embeddings.as_input_error(exc, parsed.single) from None
        return web.json_response(
            openai_embeddings.response(result, parsed.encoding),
            # What the call consumed, for the gateway's usage log (as /api/v1/embeddings).
            headers=dict(result.usage_headers),
        )

    async def completions(self, request: web.Request) -> web.StreamResponse:
        tenant = await tenant_of_headers(request.headers)
        try:
            body = await request.json()
        except ValueError:
            raise InvalidArgumentError("the body must be JSON", reason="INVALID_JSON") from None
        if not isinstance(body, dict):
            raise InvalidArgumentError("the body must be a JSON object", reason="INVALID_JSON")
        inp, model_name = self._openai_input(body, request.headers.get(COLLECTION_HEADER, ""))
        created = int(time.time())
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if not body.get("stream"):
            with _default_collection_hint(inp.collection, self.service.default_collection):
                result = await self.service.chat(inp, tenant)
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": result.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": result.answer},
                            "finish_reason": result.finish_reason,
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": result.usage.prompt_tokens,
                        "completion_tokens": result.usage.completion_tokens,
                        "total_tokens": result.usage.total_tokens,
                    },
                    "citations": [convert.to_json(convert.citation(c)) for c in result.citations],
                    "search_query": result.search_query,
                    "estimated_cost_usd": result.usage.estimated_cost_usd,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = aiter(self.service.stream(inp, tenant))
        # Errors before the first event still get an HTTP status.
        with _default_collection_hint(inp.collection, self.service.default_collection):
            first = await anext(events, None)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        model = model_name
        citations: list[dict[str, Any]] = []
        pending_usage: dict[str, int] = {}

        async def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        event = first
        while event is not None:
            if isinstance(event, Start):
                model = event.model
                await chunk({"role": "assistant", "content": ""})
            elif isinstance(event, Delta):
                await chunk({"content": event.text})
            elif isinstance(event, CitationEvent):
                citations.append(convert.to_json(convert.citation(event.citation)))
            elif isinstance(event, UsageEvent) and include_usage:
                usage = {
                    "prompt_tokens": event.usage.prompt_tokens,
                    "completion_tokens": event.usage.completion_tokens,
                    "total_tokens": event.usage.total_tokens,
                }
                pending_usage = usage
            elif isinstance(event, Done):
                await chunk({}, event.finish_reason, citations=citations)
                if include_usage:
                    payload = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": pending_usage,
                    }
                    await response.write(f"data: {json.dumps(payload)}\n\n".encode())
            elif isinstance(event, ErrorEvent):
                http = HTTP_STATUS.get(event.code, 500)
                err = {"error": openai_errors.error(http, event.message, event.reason)}
                await response.write(f"data: {json.dumps(err)}\n\n".encode())
            elif isinstance(event, Ping):
                await response.write(b": ping\n\n")
            event = await anext(events, None)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _openai_input(self, body: dict[str, Any], header: str) -> tuple[ChatInput, str]:
        for name in body:
            if name not in CHAT_COMPLETION_FIELDS:
                # As OpenAI does: a typo is refused, not ignored.
                raise InvalidArgumentError(
                    json_fields.message_text(str(name), tuple(sorted(CHAT_COMPLETION_FIELDS))),
                    reason="UNKNOWN_FIELD",
                    field=str(name),
                )
        model = body.get("model") or ""
        if not isinstance(model, str):
            raise InvalidArgumentError(
                "model must be a string", reason="INVALID_MODEL", field="model"
            )
        collection = header
        if "@" in model:
            model, _, collection = model.partition("@")
        if model in ("", "ragline"):
            model = self.service.default_model.name
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidArgumentError(
                "messages must be a non-empty list", reason="EMPTY_MESSAGES", field="messages"
            )
        turns: list[PromptMessage] = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "user",
                "assistant",
                "developer",
                "tool",
            ):
                raise InvalidArgumentError(
                    f"messages[{i}] must be an object with a valid role",
                    reason="INVALID_MESSAGE",
                    field=f"messages[{i}]",
                )
            turns.append(PromptMessage(_role(m["role"]), _content(m.get("content"), i)))
        if turns[-1].role != "user":
            raise InvalidArgumentError(
                "the last message must come from the user",
                reason="INVALID_MESSAGE",
                field=f"messages[{len(turns) - 1}]",
            )
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or 0
        temperature = body.get("temperature")
        if not isinstance(max_tokens, int) or (
            temperature is not None and not isinstance(temperature, (int, float))
        ):
            raise InvalidArgumentError(
                "max_tokens must be an integer and temperature a number", reason="INVALID_REQUEST"
            )
        history = tuple(t for t in turns[:-1] if t.role in ("user", "assistant"))
        inp = ChatInput(
            message=turns[-1].content,
            model=model,
            collection=collection,
            max_tokens=max_tokens,
            temperature=float(temperature) if temperature is not None else None,
            persist=False,
            history=history,
        )
        return inp, model


def _timeout(request: web.Request) -> float:
    """Seconds the gateway gives this call (its grpc-timeout header, e.g. "30000m")."""
    value = request.headers.get("grpc-timeout", "")
    units = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    if len(value) >= 2 and value[:-1].isdigit() and value[-1] in units:
        return int(value[:-1]) * units[value[-1]]
    return DEFAULT_TIMEOUT_S


@contextlib.contextmanager
def _default_collection_hint(collection: str, default: str) -> Iterator[None]:
    """A request that named no collection and finds no default one is told how to name it."""
    try:
        yield
    except NotFoundError as exc:
        if collection or exc.reason != "COLLECTION_NOT_FOUND":
            raise
        raise NotFoundError(
            f"{exc.message}: the request named no collection, so the default one "
            f"({default!r}, CHAT_DEFAULT_COLLECTION) was used; name one with the "
            f'{COLLECTION_HEADER} header or model "<model>@<collection>"',
            reason="COLLECTION_NOT_FOUND",
        ) from None


def _role(role: str) -> Any:
    return "user" if role in ("user",) else "assistant" if role == "assistant" else "system"


def _content(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        ]
        return "".join(parts)
    if content is None:
        return ""
    raise InvalidArgumentError(
        f"messages[{index}].content must be text",
        reason="INVALID_MESSAGE",
        field=f"messages[{index}].content",
    )


def _frame(msg: WSMessage) -> tuple[dict[str, Any] | None, InvalidArgumentError | None]:
    """A client frame as a JSON object, or why it is not one."""
    if msg.type == WSMsgType.BINARY:
        return None, InvalidArgumentError(
            "send chat requests as JSON text frames", reason="INVALID_FRAME"
        )
    try:
        body = json.loads(msg.data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, InvalidArgumentError("each frame must be a JSON object", reason="INVALID_JSON")
    return body, None


def _error_event(exc: RaglineError) -> ErrorEvent:
    return ErrorEvent(int(exc.to_status().code), exc.message, exc.reason)


def _with_conversation(inp: ChatInput, conversation_id: str) -> ChatInput:
    from dataclasses import replace

    return replace(inp, conversation_id=conversation_id)


async def start_http(
    edge: ChatHttpEdge, addr: str, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Listens on `addr`; with `ssl_context` (mutual TLS) only for clients with a
    certificate from the internal CA."""
    host, _, port = addr.rpartition(":")
    runner = web.AppRunner(edge.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, int(port), reuse_port=True, ssl_context=ssl_context)
    await site.start()
    return runner

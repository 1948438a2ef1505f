"""The transport-free core both clients share: what each API call is (its REST binding and
its gRPC method), how its request is built and its reply decoded, the retry policy and the
REST request/response mapping. `Client` and `AsyncClient` only do the I/O around it.

A request is the proto request message in its JSON form (proto field names); a reply is the
proto reply message in the same form. The REST transport sends and reads that JSON as the
gateway does (path template, query or body); the gRPC transport parses it into the message.
"""

from __future__ import annotations

import enum
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from ragline_client import models as m
from ragline_client.errors import (
    ConflictError,
    ConnectionFailedError,
    RaglineError,
    RateLimitedError,
    UnavailableError,
    from_status,
    parse_retry_after,
)

T = TypeVar("T")
Json = dict[str, Any]


class Retry(enum.Enum):
    """Which failures a call may be retried after."""

    SAFE = "safe"  # reads and idempotent writes: 429, 503/UNAVAILABLE, connection failures
    KEYED = "keyed"  # ingest: as SAFE, the Idempotency-Key makes a repeat replay its job
    REJECTED = "rejected"  # other writes: only what the gateway refused before any work


@dataclass(frozen=True, slots=True)
class Op:
    """One RPC: its gRPC method and its REST binding (google.api.http)."""

    grpc_method: str  # /package.Service/Method
    http_method: str
    path: str
    body: str | None = None  # "*" (JSON body), "file" (raw body) or None (query)
    retry: Retry = Retry.SAFE
    stream: bool = False

    @property
    def path_fields(self) -> list[str]:
        fields = _PATH_FIELDS.get(self.path)
        if fields is None:
            fields = _PATH_FIELDS[self.path] = _PATH_VARS.findall(self.path)
        return fields


_PATH_VARS = re.compile(r"\{(\w+)\}")
_PATH_FIELDS: dict[str, list[str]] = {}

_EMB = "/ragline.embedder.v1.EmbedderService/"
_RET = "/ragline.retriever.v1.RetrieverService/"
_ING = "/ragline.ingest.v1.IngestService/"
_CHAT = "/ragline.chat.v1.ChatService/"
_AUTH = "/ragline.auth.v1.AuthService/"

CREATE_EMBEDDINGS = Op(_EMB + "CreateEmbeddings", "POST", "/api/v1/embeddings", "*")
LIST_EMBEDDING_MODELS = Op(_EMB + "ListEmbeddingModels", "GET", "/api/v1/embedding-models")
SEARCH = Op(_RET + "Search", "POST", "/api/v1/search", "*")
SUGGEST = Op(_RET + "SuggestQueries", "GET", "/api/v1/collections/{collection}/suggestions")
INGEST = Op(_ING + "IngestDocuments", "POST", "/api/v1/ingest", "*", Retry.KEYED)
UPLOAD = Op(
    _ING + "UploadDocument",
    "POST",
    "/api/v1/collections/{collection}/documents:upload",
    "file",
    Retry.REJECTED,
)
GET_JOB = Op(_ING + "GetJob", "GET", "/api/v1/jobs/{job_id}")
WATCH_JOB = Op(_ING + "WatchJob", "GET", "/api/v1/jobs/{job_id}:watch", stream=True)
LIST_DOCUMENTS = Op(_ING + "ListDocuments", "GET", "/api/v1/collections/{collection}/documents")
GET_DOCUMENT = Op(
    _ING + "GetDocument", "GET", "/api/v1/collections/{collection}/documents/{document_id}"
)
DELETE_DOCUMENT = Op(
    _ING + "DeleteDocument", "DELETE", "/api/v1/collections/{collection}/documents/{document_id}"
)
LIST_COLLECTIONS = Op(_ING + "ListCollections", "GET", "/api/v1/collections")
GET_COLLECTION = Op(_ING + "GetCollection", "GET", "/api/v1/collections/{collection}")
DELETE_COLLECTION = Op(_ING + "DeleteCollection", "DELETE", "/api/v1/collections/{collection}")
CHAT = Op(_CHAT + "Chat", "POST", "/api/v1/chat", "*", Retry.REJECTED)
STREAM_CHAT = Op(_CHAT + "StreamChat", "POST", "/api/v1/chat:stream", "*", Retry.REJECTED, True)
LIST_CONVERSATIONS = Op(_CHAT + "ListConversations", "GET", "/api/v1/conversations")
GET_CONVERSATION = Op(_CHAT + "GetConversation", "GET", "/api/v1/conversations/{conversation_id}")
DELETE_CONVERSATION = Op(
    _CHAT + "DeleteConversation", "DELETE", "/api/v1/conversations/{conversation_id}"
)
LIST_CHAT_MODELS = Op(_CHAT + "ListChatModels", "GET", "/api/v1/chat-models")
CREATE_API_KEY = Op(_AUTH + "CreateApiKey", "POST", "/api/v1/keys", "*", Retry.REJECTED)
LIST_API_KEYS = Op(_AUTH + "ListApiKeys", "GET", "/api/v1/keys")
GET_API_KEY = Op(_AUTH + "GetApiKey", "GET", "/api/v1/keys/{key_id}")
ROTATE_API_KEY = Op(
    _AUTH + "RotateApiKey", "POST", "/api/v1/keys/{key_id}:rotate", "*", Retry.REJECTED
)
REVOKE_API_KEY = Op(_AUTH + "RevokeApiKey", "POST", "/api/v1/keys/{key_id}:revoke", "*")
CREATE_TOKEN = Op(_AUTH + "CreateToken", "POST", "/api/v1/tokens", "*", Retry.REJECTED)
GET_USAGE = Op("/ragline.analytics.v1.AnalyticsService/GetUsage", "GET", "/api/v1/analytics/usage")
GET_INDEX_STATUS = Op(
    _RET + "GetIndexStatus", "GET", "/api/v1/collections/{collection}/indexStatus"
)
GET_CALLER = Op(_AUTH + "GetCaller", "GET", "/api/v1/caller")
GET_CONFIGURATION = Op(_AUTH + "GetConfiguration", "GET", "/api/v1/configuration")
GET_HEALTH = Op("/ragline.system.v1.SystemService/GetHealth", "GET", "/health")


@dataclass(frozen=True, slots=True)
class Upload:
    """A raw file body (REST: the request body; gRPC: `google.api.HttpBody`)."""

    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call, ready for a transport: the request, the reply's decoder and headers."""

    op: Op
    params: Json
    decode: Callable[[Json], T]
    headers: tuple[tuple[str, str], ...] = ()
    upload: Upload | None = None
    timeout: float | None = None


# -- retries -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries 429 (after `Retry-After`), 503/UNAVAILABLE and lost connections with jittered
    exponential back-off ("full jitter": a random wait up to base * 2^n, capped).

    `max_attempts` counts the first try. A `Retry-After` longer than `max_retry_after`
    seconds is not waited for: the error is raised at once (e.g. a per-minute window)."""

    max_attempts: int = 4
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, error: RaglineError, retry: Retry) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None to raise `error`."""
        if attempt >= self.max_attempts or not retryable(error, retry):
            return None
        backoff = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            # At least what the server asked, plus a little jitter so clients told the same
            # window reset do not all come back at once.
            return error.retry_after + random.uniform(0, self.backoff_base)
        return backoff


def retryable(error: RaglineError, retry: Retry) -> bool:
    safe = retry is not Retry.REJECTED
    if isinstance(error, RateLimitedError):
        # A daily spend cap or a lock-out for unknown keys does not pass by retrying.
        return error.reason in ("", "RATE_LIMITED")
    if isinstance(error, ConnectionFailedError):
        return safe
    if isinstance(error, UnavailableError):
        return safe or error.reason == "AUTH_UNAVAILABLE"  # refused before any work
    if isinstance(error, ConflictError):
        return retry is Retry.KEYED and error.reason == "IDEMPOTENCY_KEY_IN_USE"
    return False


def with_idempotency_key(call: Call[T]) -> Call[T]:
    """An ingest call keeps one key across all its tries, so a retry after a lost reply
    replays the first try's job instead of ingesting again."""
    if call.op.retry is not Retry.KEYED or any(k == "idempotency-key" for k, _ in call.headers):
        return call
    return Call(
        call.op,
        call.params,
        call.decode,
        (*call.headers, ("idempotency-key", uuid.uuid4().hex)),
        call.upload,
        call.timeout,
    )


# -- REST mapping --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    query: list[tuple[str, str | int | float | bool | None]] = field(default_factory=list)
    content: bytes | None = None
    content_type: str | None = None


def http_request(call: Call[Any]) -> HttpRequest:
    """The call as the gateway's REST binding takes it."""
    op = call.op
    params = dict(call.params)
    path = op.path
    for name in op.path_fields:
        value = params.pop(name, "")
        if value in ("", None):
            raise ValueError(f"{name} must not be empty")
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    if op.body == "*":
        body = json.dumps(params, separators=(",", ":")).encode()
        return HttpRequest(op.http_method, path, [], body, "application/json")
    query = _query(params)
    if op.body == "file" and call.upload is not None:
        return HttpRequest(op.http_method, path, query, call.upload.data, call.upload.content_type)
    return HttpRequest(op.http_method, path, query)


def _query(params: Mapping[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    out: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, bool):
                out.append((key, "true" if v else "false"))
            else:
                out.append((key, str(v)))
    return out


def http_error(status: int, headers: Mapping[str, str], body: bytes) -> RaglineError:
    """The exception for a non-2xx REST reply (a `google.rpc.Status` JSON body)."""
    parsed: Any = None
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    text = body[:200].decode("utf-8", "replace") if parsed is None else ""
    return from_status(
        parsed if isinstance(parsed, dict) else None,
        http_status=status,
        message=text,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def sse_data(line: str) -> Json | None:
    """The JSON of one server-sent event `data:` line; None for any other line."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload:
        return None
    data = json.loads(payload)
    return data if isinstance(data, dict) else None


# -- request building ------------------------------------------------------------------------------
def _clean(**params: Any) -> Json:
    """Drops parameters left at None (the server's default applies)."""
    out: Json = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, datetime):
            value = _rfc3339(value)
        out[key] = value
    return out


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decoder(cls: type[T]) -> Callable[[Json], T]:
    return lambda data: m.decode(cls, data)


def _page_decoder(cls: type[T], items: str) -> Callable[[Json], m.Page[T]]:
    def decode(data: Json) -> m.Page[T]:
        return m.Page(
            [m.decode(cls, item) for item in data.get(items) or ()],
            str(data.get("next_page_token") or ""),
        )

    return decode


def embeddings(texts: str | Sequence[str], model: str | None) -> Call[m.Embeddings]:
    params = (
        _clean(text=texts, model=model)
        if isinstance(texts, str)
        else _clean(texts=list(texts), model=model)
    )
    return Call(CREATE_EMBEDDINGS, params, _decoder(m.Embeddings))


def embedding_models(page_size: int | None, token: str) -> Call[m.Page[m.EmbeddingModel]]:
    params = _clean(page_size=page_size, page_token=token or None)
    return Call(LIST_EMBEDDING_MODELS, params, _page_decoder(m.EmbeddingModel, "models"))


def search(
    query: str,
    collection: str,
    *,
    limit: int | None,
    filters: Mapping[str, Any] | None,
    rerank: bool | None,
    mode: m.SearchMode | str | None,
    page_size: int | None,
    page_token: str | None,
    facets: Sequence[str] | None,
) -> Call[m.SearchResults]:
    params = _clean(
        query=query,
        collection=collection,
        limit=limit,
        filters=dict(filters) if filters is not None else None,
        rerank=rerank,
        page_size=page_size,
        page_token=page_token or None,
        facets=list(facets) if facets else None,
        mode=m.SearchMode(mode) if mode is not None else None,
    )
    return Call(SEARCH, params, _decoder(m.SearchResults))


def suggest(collection: str, prefix: str, limit: int | None) -> Call[list[str]]:
    params = _clean(collection=collection, prefix=prefix, limit=limit)
    return Call(SUGGEST, params, lambda data: [str(s) for s in data.get("suggestions") or ()])


def ingest(
    collection: str,
    documents: Iterable[m.DocumentInput | Mapping[str, Any]],
    embedding_model: str | None,
    idempotency_key: str | None,
) -> Call[m.IngestResult]:
    docs = [d.to_json() if isinstance(d, m.DocumentInput) else dict(d) for d in documents]
    params = _clean(documents=docs, collection=collection, embedding_model=embedding_model)
    headers = (("idempotency-key", idempotency_key),) if idempotency_key else ()
    return Call(INGEST, params, _decoder(m.IngestResult), headers)


# What the server's parser takes (docs/retrieval.md); anything else is sent as text/plain.
CONTENT_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def content_type_of(filename: str) -> str:
    dot = filename.rfind(".")
    return CONTENT_TYPES.get(filename[dot:].lower() if dot >= 0 else "", "text/plain")


def upload(
    collection: str,
    data: bytes,
    filename: str,
    *,
    title: str | None,
    document_id: str | None,
    embedding_model: str | None,
    content_type: str | None,
) -> Call[m.UploadResult]:
    params = _clean(
        collection=collection,
        filename=filename or None,
        title=title,
        document_id=document_id,
        embedding_model=embedding_model,
    )
    body = Upload(data, content_type or content_type_of(filename))
    return Call(UPLOAD, params, _decoder(m.UploadResult), upload=body)


def get_job(job_id: str) -> Call[m.Job]:
    return Call(GET_JOB, {"job_id": job_id}, _decoder(m.Job))


def watch_job(job_id: str) -> Call[m.Job]:
    """A stream of `WatchJobResponse`; each decodes to its job."""
    return Call(WATCH_JOB, {"job_id": job_id}, lambda data: m.decode(m.Job, data.get("job")))


def documents(collection: str, page_size: int | None, token: str) -> Call[m.Page[m.Document]]:
    params = _clean(collection=collection, page_size=page_size, page_token=token or None)
    return Call(LIST_DOCUMENTS, params, _page_decoder(m.Document, "documents"))


def get_document(collection: str, document_id: str) -> Call[m.Document]:
    params = {"collection": collection, "document_id": document_id}
    return Call(GET_DOCUMENT, params, _decoder(m.Document))


def delete_document(collection: str, document_id: str) -> Call[m.DeleteDocumentResult]:
    params = {"collection": collection, "document_id": document_id}
    return Call(DELETE_DOCUMENT, params, _decoder(m.DeleteDocumentResult))


def collections(page_size: int | None, token: str) -> Call[m.Page[m.Collection]]:
    params = _clean(page_size=page_size, page_token=token or None)
    return Call(LIST_COLLECTIONS, params, _page_decoder(m.Collection, "collections"))


def get_collection(collection: str) -> Call[m.Collection]:
    return Call(GET_COLLECTION, {"collection": collection}, _decoder(m.Collection))


def delete_collection(collection: str) -> Call[m.DeleteCollectionResult]:
    return Call(DELETE_COLLECTION, {"collection": collection}, _decoder(m.DeleteCollectionResult))


def _chat_params(
    message: str,
    conversation_id: str | None,
    model: str | None,
    collection: str | None,
    filters: Mapping[str, Any] | None,
    limit: int | None,
    temperature: float | None,
    max_tokens: int | None,
) -> Json:
    return _clean(
        message=message,
        conversation_id=conversation_id,
        model=model,
        collection=collection,
        filters=dict(filters) if filters is not None else None,
        limit=limit,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def chat(
    message: str,
    *,
    conversation_id: str | None,
    model: str | None,
    collection: str | None,
    filters: Mapping[str, Any] | None,
    limit: int | None,
    temperature: float | None,
    max_tokens: int | None,
) -> Call[m.ChatResponse]:
    params = _chat_params(
        message, conversation_id, model, collection, filters, limit, temperature, max_tokens
    )
    return Call(CHAT, params, _decoder(m.ChatResponse))


def chat_stream(
    message: str,
    *,
    conversation_id: str | None,
    model: str | None,
    collection: str | None,
    filters: Mapping[str, Any] | None,
    limit: int | None,
    temperature: float | None,
    max_tokens: int | None,
) -> Call[m.ChatEvent | None]:
    params = _chat_params(
        message, conversation_id, model, collection, filters, limit, temperature, max_tokens
    )
    return Call(STREAM_CHAT, params, m.decode_chat_event)


def conversations(page_size: int | None, token: str) -> Call[m.Page[m.Conversation]]:
    params = _clean(page_size=page_size, page_token=token or None)
    return Call(LIST_CONVERSATIONS, params, _page_decoder(m.Conversation, "conversations"))


def get_conversation(conversation_id: str) -> Call[m.Conversation]:
    return Call(GET_CONVERSATION, {"conversation_id": conversation_id}, _decoder(m.Conversation))


def delete_conversation(conversation_id: str) -> Call[m.DeleteConversationResult]:
    params = {"conversation_id": conversation_id}
    return Call(DELETE_CONVERSATION, params, _decoder(m.DeleteConversationResult))


def chat_models(page_size: int | None, token: str) -> Call[m.Page[m.ChatModel]]:
    params = _clean(page_size=page_size, page_token=token or None)
    return Call(LIST_CHAT_MODELS, params, _page_decoder(m.ChatModel, "models"))


def create_api_key(
    tenant: str,
    scopes: Sequence[str],
    *,
    name: str | None,
    tier: str | None,
    environment: m.KeyEnvironment | str | None,
    ttl_seconds: int | None,
) -> Call[m.CreatedApiKey]:
    params = _clean(
        tenant=tenant,
        scopes=list(scopes),
        name=name,
        tier=tier,
        environment=m.KeyEnvironment(environment) if environment is not None else None,
        ttl_seconds=ttl_seconds,
    )
    return Call(CREATE_API_KEY, params, _decoder(m.CreatedApiKey))


def api_keys(tenant: str | None, page_size: int | None, token: str) -> Call[m.Page[m.ApiKey]]:
    params = _clean(tenant=tenant, page_size=page_size, page_token=token or None)
    return Call(LIST_API_KEYS, params, _page_decoder(m.ApiKey, "api_keys"))


def get_api_key(key_id: str) -> Call[m.ApiKey]:
    return Call(GET_API_KEY, {"key_id": key_id}, _decoder(m.ApiKey))


def rotate_api_key(key_id: str, grace_period_seconds: int | None) -> Call[m.RotatedApiKey]:
    params = _clean(key_id=key_id, grace_period_seconds=grace_period_seconds)
    return Call(ROTATE_API_KEY, params, _decoder(m.RotatedApiKey))


def revoke_api_key(key_id: str) -> Call[m.ApiKey]:
    return Call(
        REVOKE_API_KEY, {"key_id": key_id}, lambda data: m.decode(m.ApiKey, data.get("api_key"))
    )


def create_token(ttl_seconds: int | None) -> Call[m.Token]:
    return Call(CREATE_TOKEN, _clean(ttl_seconds=ttl_seconds), _decoder(m.Token))


def usage(
    tenant: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
    granularity: m.Granularity | str | None,
) -> Call[m.Usage]:
    params = _clean(
        tenant=tenant,
        start_time=start_time,
        end_time=end_time,
        granularity=m.Granularity(granularity) if granularity is not None else None,
    )
    return Call(GET_USAGE, params, _decoder(m.Usage))


def index_status(collection: str) -> Call[m.IndexStatus]:
    return Call(GET_INDEX_STATUS, {"collection": collection}, _decoder(m.IndexStatus))


def caller() -> Call[m.Caller]:
    return Call(GET_CALLER, {}, _decoder(m.Caller))


def configuration() -> Call[m.Configuration]:
    return Call(GET_CONFIGURATION, {}, _decoder(m.Configuration))


def health() -> Call[m.Health]:
    return Call(GET_HEALTH, {}, _decoder(m.Health))


def stream_error(event: m.StreamError) -> RaglineError:
    """An in-band chat stream error as the exception the same error would raise."""
    return from_status(
        {
            "code": event.code,
            "message": event.message,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": event.reason}
            ],
        }
    )


def folder_files(folder: str, patterns: Sequence[str], recursive: bool) -> list[str]:
    """The files of a folder that match one of `patterns`, sorted (for ingest_folder)."""
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{folder!r} is not a folder")
    found: set[Path] = set()
    for pattern in patterns:
        found.update(p for p in (root.rglob(pattern) if recursive else root.glob(pattern)))
    return sorted(str(p) for p in found if p.is_file())


DEFAULT_PATTERNS = ("*.txt", "*.md", "*.markdown", "*.html", "*.htm", "*.pdf", "*.docx")


class ChatAccumulator:
    """Collects a chat stream's events into the `ChatResponse` the plain call returns."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.citations: list[m.Citation] = []
        self.start: m.StreamStart | None = None
        self.usage: m.ChatUsage | None = None
        self.done: m.StreamDone | None = None

    def add(self, event: m.ChatEvent) -> None:
        if isinstance(event, m.StreamDelta):
            self.parts.append(event.text)
        elif isinstance(event, m.Citation):
            self.citations.append(event)
        elif isinstance(event, m.StreamStart):
            self.start = event
        elif isinstance(event, m.ChatUsage):
            self.usage = event
        elif isinstance(event, m.StreamDone):
            self.done = event

    def response(self) -> m.ChatResponse:
        start = self.start or m.StreamStart()
        done = self.done or m.StreamDone()
        return m.ChatResponse(
            answer="".join(self.parts),
            citations=list(self.citations),
            conversation_id=start.conversation_id,
            usage=self.usage,
            model=start.model,
            message_id=done.message_id,
            search_query=start.search_query,
            finish_reason=done.finish_reason,
        )


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    from ragline_client._version import __version__

    headers = {"user-agent": f"ragline-client-python/{__version__}"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def resolve(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The gateway URL and key: arguments first, then RAGLINE_BASE_URL / RAGLINE_API_KEY."""
    import os

    url = base_url or os.environ.get("RAGLINE_BASE_URL") or "http://localhost:8000"
    return url.rstrip("/"), api_key or os.environ.get("RAGLINE_API_KEY") or None


def grpc_target_of(base_url: str) -> tuple[str, bool]:
    """host:port of the gateway's native gRPC (the REST port) and whether it uses TLS."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    return f"{parts.hostname}:{port}", tls

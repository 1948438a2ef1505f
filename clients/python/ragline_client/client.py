"""The synchronous client. Every method builds its call in `_core` and runs it through the
transport (REST, or native gRPC with `prefer_grpc=True`) with the retry policy."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, Protocol, TypeVar

import httpx

from ragline_client import _core as core
from ragline_client import models as m
from ragline_client._rest import RestTransport
from ragline_client.errors import DeadlineExceededError, RaglineError, UnavailableError

T = TypeVar("T")
Json = dict[str, Any]
FileInput = str | os.PathLike[str] | bytes | IO[bytes]


class _Transport(Protocol):
    def unary(self, call: core.Call[Any], timeout: float) -> Json: ...

    def stream(self, call: core.Call[Any], timeout: float) -> Iterator[Json]: ...

    def close(self) -> None: ...


class Pager(Generic[T]):
    """The items of a List call across all its pages, fetched lazily page by page.

    Iterate it for the items (`for c in client.list_collections(): ...`), or `pages()` for
    the pages with their tokens."""

    def __init__(self, fetch: Callable[[str], m.Page[T]], page_token: str = "") -> None:
        self._fetch = fetch
        self._token = page_token

    def pages(self) -> Iterator[m.Page[T]]:
        token = self._token
        while True:
            page = self._fetch(token)
            yield page
            if not page.next_page_token:
                return
            token = page.next_page_token

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class ChatStream:
    """A streaming chat answer: iterate it for typed events (`StreamStart`, `StreamDelta`,
    `Citation`, `ChatUsage`, `StreamDone`, `StreamPing`); an in-band error is raised as the
    matching `RaglineError`. After the stream, `response()` is the whole answer."""

    def __init__(self, events: Iterator[m.ChatEvent | None]) -> None:
        self._events = events
        self._acc = core.ChatAccumulator()

    def __iter__(self) -> Iterator[m.ChatEvent]:
        for event in self._events:
            if event is None:
                continue
            if isinstance(event, m.StreamError):
                raise core.stream_error(event)
            self._acc.add(event)
            yield event

    def text(self) -> Iterator[str]:
        """Only the answer's text, piece by piece."""
        for event in self:
            if isinstance(event, m.StreamDelta):
                yield event.text

    def response(self) -> m.ChatResponse:
        """Reads what is left of the stream; the answer as `chat()` returns it."""
        for _ in self:
            pass
        return self._acc.response()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_file(file: FileInput, filename: str | None) -> tuple[bytes, str]:
    if isinstance(file, bytes):
        return file, filename or "upload.txt"
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        return path.read_bytes(), filename or path.name
    data = file.read()
    name = filename or Path(str(getattr(file, "name", "upload.txt"))).name
    return data, name


class Client:
    """The ragline API, synchronous.

        with Client("http://localhost:8000", api_key="dev-key-1") as client:
            client.ingest("notes", [DocumentInput("Envoy transcodes JSON to gRPC.")])
            for hit in client.search("what transcodes JSON?", "notes").hits:
                print(hit.score, hit.title)

    `base_url` and `api_key` default to RAGLINE_BASE_URL and RAGLINE_API_KEY.
    `prefer_grpc=True` speaks native gRPC to the same gateway port (install the `grpc`
    extra); results and errors are the same types either way. `timeout` (seconds) is the
    deadline of each try (over gRPC it is the call's deadline at the gateway); failed tries
    are retried as `retry` says (429 after Retry-After, 503/UNAVAILABLE with jittered
    back-off; `max_retries=0` turns retries off).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        prefer_grpc: bool = False,
        grpc_target: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        retry: core.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, key = core.resolve(base_url, api_key)
        self.timeout = timeout
        self.retry = retry or core.RetryPolicy(max_attempts=max_retries + 1)
        self.prefer_grpc = prefer_grpc
        common = core.client_headers(key, headers)
        self._transport: _Transport
        if prefer_grpc:
            from ragline_client._grpc import GrpcTransport

            target, tls = core.grpc_target_of(self.base_url)
            self._transport = GrpcTransport(grpc_target or target, tls, common)
        else:
            self._transport = RestTransport(self.base_url, common, timeout, http_client)

    # -- plumbing ------------------------------------------------------------------------------
    def _run(self, call: core.Call[T]) -> T:
        call = core.with_idempotency_key(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                return call.decode(self._transport.unary(call, call.timeout or self.timeout))
            except RaglineError as err:
                delay = self.retry.delay(attempt, err, call.op.retry)
                if delay is None:
                    raise
                time.sleep(delay)

    def _stream(self, call: core.Call[T]) -> Iterator[T]:
        # Retried only until the first event: after that, a repeat could duplicate output.
        attempt = 0
        while True:
            attempt += 1
            events = self._transport.stream(call, call.timeout or self.timeout)
            try:
                first = next(events, None)
            except RaglineError as err:
                delay = self.retry.delay(attempt, err, call.op.retry)
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            break
        try:
            if first is None:
                return
            yield call.decode(first)
            for data in events:
                yield call.decode(data)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- embeddings ----------------------------------------------------------------------------
    def embed(self, texts: str | Sequence[str], *, model: str | None = None) -> m.Embeddings:
        """Embeds one text or a list of texts (one `Embedding` per text, in order)."""
        return self._run(core.embeddings(texts, model))

    def list_embedding_models(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Pager[m.EmbeddingModel]:
        """The embedding models, default first."""
        return Pager(
            lambda token: self._run(core.embedding_models(page_size, token)), page_token or ""
        )

    # -- ingest and jobs -----------------------------------------------------------------------
    def ingest(
        self,
        collection: str,
        documents: Iterable[m.DocumentInput | Mapping[str, Any]],
        *,
        embedding_model: str | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
        on_progress: Callable[[m.Job], None] | None = None,
    ) -> m.IngestResult:
        """Ingests documents into `collection`. Retries reuse one Idempotency-Key (yours, or
        a generated one), so a repeat replays the same job. Small requests come back done;
        `wait=True` waits for a larger job too (`on_progress` sees each update)."""
        result = self._run(core.ingest(collection, documents, embedding_model, idempotency_key))
        if wait and result.job is not None and not result.job.finished:
            job = self.wait_for_job(result.job_id, on_progress=on_progress)
            result = dataclasses.replace(result, job=job)
        return result

    def upload_file(
        self,
        collection: str,
        file: FileInput,
        *,
        filename: str | None = None,
        title: str | None = None,
        document_id: str | None = None,
        embedding_model: str | None = None,
        content_type: str | None = None,
        wait: bool = False,
    ) -> m.UploadResult:
        """Uploads a .txt, .md, .html, .pdf or .docx file (a path, bytes or a binary file)."""
        data, name = _read_file(file, filename)
        call = core.upload(
            collection,
            data,
            name,
            title=title,
            document_id=document_id,
            embedding_model=embedding_model,
            content_type=content_type,
        )
        result = self._run(call)
        if wait and result.job is not None and not result.job.finished:
            result = dataclasses.replace(result, job=self.wait_for_job(result.job_id))
        return result

    def ingest_folder(
        self,
        collection: str,
        folder: str | os.PathLike[str],
        *,
        patterns: Sequence[str] = core.DEFAULT_PATTERNS,
        recursive: bool = True,
        embedding_model: str | None = None,
        wait: bool = False,
        on_file: Callable[[str, m.UploadResult], None] | None = None,
    ) -> list[m.UploadResult]:
        """Uploads every file of `folder` matching `patterns` (one document each)."""
        results = []
        for path in core.folder_files(os.fspath(folder), patterns, recursive):
            result = self.upload_file(collection, path, embedding_model=embedding_model, wait=wait)
            if on_file is not None:
                on_file(path, result)
            results.append(result)
        return results

    def get_job(self, job_id: str) -> m.Job:
        return self._run(core.get_job(job_id))

    def watch_job(self, job_id: str) -> Iterator[m.Job]:
        """Each state of the job as it changes, until it has finished."""
        return self._stream(core.watch_job(job_id))

    def wait_for_job(
        self,
        job_id: str,
        *,
        on_progress: Callable[[m.Job], None] | None = None,
        timeout: float | None = None,
    ) -> m.Job:
        """Watches the job until it has finished; returns it (check `state`). A watch that
        breaks off (a quiet job past the read timeout, a lost connection, a restarted
        service) is resumed; `timeout` (seconds) bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = None
            try:
                for job in self.watch_job(job_id):
                    if on_progress is not None:
                        on_progress(job)
            except (DeadlineExceededError, UnavailableError):
                pass
            if job is None or not job.finished:
                job = self.get_job(job_id)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceededError(
                    f"job {job_id} has not finished within {timeout:g} s", reason="CLIENT_TIMEOUT"
                )
            time.sleep(0.5)

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        collection: str,
        *,
        limit: int | None = None,
        filters: Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        mode: m.SearchMode | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        facets: Sequence[str] | None = None,
    ) -> m.SearchResults:
        """Hybrid (default), dense or keyword search with metadata filters, optional
        reranking, facet counts and pages (`page_size`, `page_token`)."""
        return self._run(
            core.search(
                query,
                collection,
                limit=limit,
                filters=filters,
                rerank=rerank,
                mode=mode,
                page_size=page_size,
                page_token=page_token,
                facets=facets,
            )
        )

    def suggest(self, collection: str, prefix: str, *, limit: int | None = None) -> list[str]:
        """Query completions from the collection's titles and vocabulary."""
        return self._run(core.suggest(collection, prefix, limit))

    # -- collections and documents -------------------------------------------------------------
    def list_collections(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Pager[m.Collection]:
        return Pager(lambda token: self._run(core.collections(page_size, token)), page_token or "")

    def get_collection(self, collection: str) -> m.Collection:
        return self._run(core.get_collection(collection))

    def get_index_status(self, collection: str) -> m.IndexStatus:
        """The answering retriever replica's index of the collection against the database."""
        return self._run(core.index_status(collection))

    def delete_collection(self, collection: str) -> m.DeleteCollectionResult:
        return self._run(core.delete_collection(collection))

    def list_documents(
        self, collection: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> Pager[m.Document]:
        return Pager(
            lambda token: self._run(core.documents(collection, page_size, token)), page_token or ""
        )

    def get_document(self, collection: str, document_id: str) -> m.Document:
        return self._run(core.get_document(collection, document_id))

    def delete_document(self, collection: str, document_id: str) -> m.DeleteDocumentResult:
        return self._run(core.delete_document(collection, document_id))

    # -- chat ----------------------------------------------------------------------------------
    def chat(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        collection: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> m.ChatResponse:
        """A grounded answer with citations; pass `conversation_id` to continue one."""
        return self._run(
            core.chat(
                message,
                conversation_id=conversation_id,
                model=model,
                collection=collection,
                filters=filters,
                limit=limit,
                temperature=temperature,
                max_tokens=max_tokens,
            )
        )

    def chat_stream(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        model: str | None = None,
        collection: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatStream:
        """The answer as a stream of typed events (see `ChatStream`)."""
        call = core.chat_stream(
            message,
            conversation_id=conversation_id,
            model=model,
            collection=collection,
            filters=filters,
            limit=limit,
            temperature=temperature,
            max_tokens=max_tokens,
        )
        return ChatStream(self._stream(call))

    def list_conversations(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Pager[m.Conversation]:
        return Pager(
            lambda token: self._run(core.conversations(page_size, token)), page_token or ""
        )

    def get_conversation(self, conversation_id: str) -> m.Conversation:
        """The conversation with its messages."""
        return self._run(core.get_conversation(conversation_id))

    def delete_conversation(self, conversation_id: str) -> m.DeleteConversationResult:
        return self._run(core.delete_conversation(conversation_id))

    def list_chat_models(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> Pager[m.ChatModel]:
        return Pager(lambda token: self._run(core.chat_models(page_size, token)), page_token or "")

    # -- keys and tokens (admin) ---------------------------------------------------------------
    def create_api_key(
        self,
        tenant: str,
        scopes: Sequence[str],
        *,
        name: str | None = None,
        tier: str | None = None,
        environment: m.KeyEnvironment | str | None = None,
        ttl_seconds: int | None = None,
    ) -> m.CreatedApiKey:
        """A new key (admin scope); its plaintext is in `.key`, shown only once."""
        return self._run(
            core.create_api_key(
                tenant,
                scopes,
                name=name,
                tier=tier,
                environment=environment,
                ttl_seconds=ttl_seconds,
            )
        )

    def list_api_keys(
        self,
        *,
        tenant: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Pager[m.ApiKey]:
        return Pager(
            lambda token: self._run(core.api_keys(tenant, page_size, token)), page_token or ""
        )

    def get_api_key(self, key_id: str) -> m.ApiKey:
        return self._run(core.get_api_key(key_id))

    def rotate_api_key(
        self, key_id: str, *, grace_period_seconds: int | None = None
    ) -> m.RotatedApiKey:
        return self._run(core.rotate_api_key(key_id, grace_period_seconds))

    def revoke_api_key(self, key_id: str) -> m.ApiKey:
        return self._run(core.revoke_api_key(key_id))

    def create_token(self, *, ttl_seconds: int | None = None) -> m.Token:
        """A short-lived JWT for this client's API key."""
        return self._run(core.create_token(ttl_seconds))

    # -- usage and health ----------------------------------------------------------------------
    def get_usage(
        self,
        *,
        tenant: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        granularity: m.Granularity | str | None = None,
    ) -> m.Usage:
        """Requests, errors, tokens and cost per endpoint and per hour or day."""
        return self._run(core.usage(tenant, start_time, end_time, granularity))

    def caller(self) -> m.Caller:
        """The credential of this client as the gateway verified it (any valid one)."""
        return self._run(core.caller())

    def get_configuration(self) -> m.Configuration:
        """Each service's settings, secrets redacted, and the rate-limit tiers (admin)."""
        return self._run(core.configuration())

    def health(self) -> m.Health:
        return self._run(core.health())

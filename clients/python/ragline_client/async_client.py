"""The asynchronous client: the same methods as `Client`, awaited (Lists and streams are
iterated with `async for`). It shares every request, decoder and the retry policy with
`Client` through `_core`; only the I/O differs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import httpx

from ragline_client import _core as core
from ragline_client import models as m
from ragline_client._rest import AsyncRestTransport
from ragline_client.client import FileInput, _read_file
from ragline_client.errors import DeadlineExceededError, RaglineError, UnavailableError

T = TypeVar("T")
Json = dict[str, Any]


class _AsyncTransport(Protocol):
    async def unary(self, call: core.Call[Any], timeout: float) -> Json: ...

    def stream(self, call: core.Call[Any], timeout: float) -> AsyncIterator[Json]: ...

    async def aclose(self) -> None: ...


class AsyncPager(Generic[T]):
    """The items of a List call across all its pages, fetched lazily:
    `async for c in client.list_collections(): ...`; `pages()` for the pages."""

    def __init__(self, fetch: Callable[[str], Awaitable[m.Page[T]]], page_token: str = "") -> None:
        self._fetch = fetch
        self._token = page_token

    async def pages(self) -> AsyncIterator[m.Page[T]]:
        token = self._token
        while True:
            page = await self._fetch(token)
            yield page
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def to_list(self) -> list[T]:
        """Every item of every page."""
        return [item async for item in self]


class AsyncChatStream:
    """A streaming chat answer: `async for event in stream` gives typed events; an in-band
    error is raised as the matching `RaglineError`; `await response()` is the whole answer."""

    def __init__(self, events: AsyncIterator[m.ChatEvent | None]) -> None:
        self._events = events
        self._acc = core.ChatAccumulator()

    async def __aiter__(self) -> AsyncIterator[m.ChatEvent]:
        async for event in self._events:
            if event is None:
                continue
            if isinstance(event, m.StreamError):
                raise core.stream_error(event)
            self._acc.add(event)
            yield event

    async def text(self) -> AsyncIterator[str]:
        """Only the answer's text, piece by piece."""
        async for event in self:
            if isinstance(event, m.StreamDelta):
                yield event.text

    async def response(self) -> m.ChatResponse:
        """Reads what is left of the stream; the answer as `chat()` returns it."""
        async for _ in self:
            pass
        return self._acc.response()

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncClient:
    """The ragline API, asynchronous; the arguments are `Client`'s.

    async with AsyncClient(api_key="dev-key-1") as client:
        results = await client.search("what transcodes JSON?", "notes")
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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url, key = core.resolve(base_url, api_key)
        self.timeout = timeout
        self.retry = retry or core.RetryPolicy(max_attempts=max_retries + 1)
        self.prefer_grpc = prefer_grpc
        common = core.client_headers(key, headers)
        self._transport: _AsyncTransport
        if prefer_grpc:
            from ragline_client._grpc import AsyncGrpcTransport

            target, tls = core.grpc_target_of(self.base_url)
            self._transport = AsyncGrpcTransport(grpc_target or target, tls, common)
        else:
            self._transport = AsyncRestTransport(self.base_url, common, timeout, http_client)

    # -- plumbing -----------------------------------------------------------------------------
    async def _run(self, call: core.Call[T]) -> T:
        call = core.with_idempotency_key(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                data = await self._transport.unary(call, call.timeout or self.timeout)
                return call.decode(data)
            except RaglineError as err:
                delay = self.retry.delay(attempt, err, call.op.retry)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _stream(self, call: core.Call[T]) -> AsyncIterator[T]:
        # Retried only until the first event: after that, a repeat could duplicate output.
        attempt = 0
        while True:
            attempt += 1
            events = self._transport.stream(call, call.timeout or self.timeout)
            try:
                first = await anext(events, None)
            except RaglineError as err:
                delay = self.retry.delay(attempt, err, call.op.retry)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            break
        try:
            if first is None:
                return
            yield call.decode(first)
            async for data in events:
                yield call.decode(data)
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- embeddings ----------------------------------------------------------------------------
    async def embed(self, texts: str | Sequence[str], *, model: str | None = None) -> m.Embeddings:
        """Embeds one text or a list of texts (one `Embedding` per text, in order)."""
        return await self._run(core.embeddings(texts, model))

    def list_embedding_models(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> AsyncPager[m.EmbeddingModel]:
        """The embedding models, default first."""
        return AsyncPager(
            lambda token: self._run(core.embedding_models(page_size, token)), page_token or ""
        )

    # -- ingest and jobs -----------------------------------------------------------------------
    async def ingest(
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
        result = await self._run(
            core.ingest(collection, documents, embedding_model, idempotency_key)
        )
        if wait and result.job is not None and not result.job.finished:
            job = await self.wait_for_job(result.job_id, on_progress=on_progress)
            result = dataclasses.replace(result, job=job)
        return result

    async def upload_file(
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
        result = await self._run(call)
        if wait and result.job is not None and not result.job.finished:
            result = dataclasses.replace(result, job=await self.wait_for_job(result.job_id))
        return result

    async def ingest_folder(
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
            result = await self.upload_file(
                collection, path, embedding_model=embedding_model, wait=wait
            )
            if on_file is not None:
                on_file(path, result)
            results.append(result)
        return results

    async def get_job(self, job_id: str) -> m.Job:
        return await self._run(core.get_job(job_id))

    def watch_job(self, job_id: str) -> AsyncIterator[m.Job]:
        """Each state of the job as it changes, until it has finished."""
        return self._stream(core.watch_job(job_id))

    async def wait_for_job(
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
                async for job in self.watch_job(job_id):
                    if on_progress is not None:
                        on_progress(job)
            except (DeadlineExceededError, UnavailableError):
                pass
            if job is None or not job.finished:
                job = await self.get_job(job_id)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceededError(
                    f"job {job_id} has not finished within {timeout:g} s", reason="CLIENT_TIMEOUT"
                )
            await asyncio.sleep(0.5)

    # -- search --------------------------------------------------------------------------------
    async def search(
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
        return await self._run(
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

    async def suggest(self, collection: str, prefix: str, *, limit: int | None = None) -> list[str]:
        """Query completions from the collection's titles and vocabulary."""
        return await self._run(core.suggest(collection, prefix, limit))

    # -- collections and documents -------------------------------------------------------------
    def list_collections(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> AsyncPager[m.Collection]:
        return AsyncPager(
            lambda token: self._run(core.collections(page_size, token)), page_token or ""
        )

    async def get_collection(self, collection: str) -> m.Collection:
        return await self._run(core.get_collection(collection))

    async def get_index_status(self, collection: str) -> m.IndexStatus:
        """The answering retriever replica's index of the collection against the database."""
        return await self._run(core.index_status(collection))

    async def delete_collection(self, collection: str) -> m.DeleteCollectionResult:
        return await self._run(core.delete_collection(collection))

    def list_documents(
        self, collection: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> AsyncPager[m.Document]:
        return AsyncPager(
            lambda token: self._run(core.documents(collection, page_size, token)), page_token or ""
        )

    async def get_document(self, collection: str, document_id: str) -> m.Document:
        return await self._run(core.get_document(collection, document_id))

    async def delete_document(self, collection: str, document_id: str) -> m.DeleteDocumentResult:
        return await self._run(core.delete_document(collection, document_id))

    # -- chat ----------------------------------------------------------------------------------
    async def chat(
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
        return await self._run(
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
    ) -> AsyncChatStream:
        """The answer as a stream of typed events (see `AsyncChatStream`)."""
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
        return AsyncChatStream(self._stream(call))

    def list_conversations(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> AsyncPager[m.Conversation]:
        return AsyncPager(
            lambda token: self._run(core.conversations(page_size, token)), page_token or ""
        )

    async def get_conversation(self, conversation_id: str) -> m.Conversation:
        """The conversation with its messages."""
        return await self._run(core.get_conversation(conversation_id))

    async def delete_conversation(self, conversation_id: str) -> m.DeleteConversationResult:
        return await self._run(core.delete_conversation(conversation_id))

    def list_chat_models(
        self, *, page_size: int | None = None, page_token: str | None = None
    ) -> AsyncPager[m.ChatModel]:
        return AsyncPager(
            lambda token: self._run(core.chat_models(page_size, token)), page_token or ""
        )

    # -- keys and tokens (admin) ---------------------------------------------------------------
    async def create_api_key(
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
        return await self._run(
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
    ) -> AsyncPager[m.ApiKey]:
        return AsyncPager(
            lambda token: self._run(core.api_keys(tenant, page_size, token)), page_token or ""
        )

    async def get_api_key(self, key_id: str) -> m.ApiKey:
        return await self._run(core.get_api_key(key_id))

    async def rotate_api_key(
        self, key_id: str, *, grace_period_seconds: int | None = None
    ) -> m.RotatedApiKey:
        return await self._run(core.rotate_api_key(key_id, grace_period_seconds))

    async def revoke_api_key(self, key_id: str) -> m.ApiKey:
        return await self._run(core.revoke_api_key(key_id))

    async def create_token(self, *, ttl_seconds: int | None = None) -> m.Token:
        """A short-lived JWT for this client's API key."""
        return await self._run(core.create_token(ttl_seconds))

    # -- usage and health ----------------------------------------------------------------------
    async def get_usage(
        self,
        *,
        tenant: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        granularity: m.Granularity | str | None = None,
    ) -> m.Usage:
        """Requests, errors, tokens and cost per endpoint and per hour or day."""
        return await self._run(core.usage(tenant, start_time, end_time, granularity))

    async def caller(self) -> m.Caller:
        """The credential of this client as the gateway verified it (any valid one)."""
        return await self._run(core.caller())

    async def get_configuration(self) -> m.Configuration:
        """Each service's settings, secrets redacted, and the rate-limit tiers (admin)."""
        return await self._run(core.configuration())

    async def health(self) -> m.Health:
        return await self._run(core.health())

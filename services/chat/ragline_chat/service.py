"""Chat domain logic: validate, load the conversation, rewrite the question, retrieve,
build a safe prompt, generate with fallback, cite, account, and store the turn.

`stream()` yields typed events (errors after the first event go in-band); `chat()` is its
unary twin. A failed or cancelled generation is stored as an assistant turn marked
failed/cancelled with what was produced, never as a silent half-written answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragline_chat.domain import (
    CANCELLED,
    COMPLETE,
    FAILED,
    ChatInput,
    ChatResult,
    Citation,
    CitationEvent,
    Conversation,
    Delta,
    Done,
    ErrorEvent,
    Event,
    Passage,
    Ping,
    PromptMessage,
    Start,
    StoredMessage,
    Usage,
    UsageEvent,
)
from ragline_chat.grounding import cite
from ragline_chat.models import ChatModelSpec, ModelRegistry
from ragline_chat.prompt import REFUSAL, OutputGuard, SystemPrompt, build_messages, select_passages
from ragline_chat.providers.base import ChatProvider, Chunk, GenerationRequest
from ragline_chat.retrieval import Retriever
from ragline_chat.rewrite import bounded_history, standalone_query
from ragline_chat.store import ConversationStore, new_id, now
from ragline_chat.text import estimate_tokens
from ragline_core import deadlines
from ragline_core.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    RaglineError,
    ResourceExhaustedError,
    UnavailableError,
)
from ragline_core.metrics import COST, TOKENS
from ragline_core.spend import SpendGuard

log = logging.getLogger("ragline.chat")

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COLLECTION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_TEMPERATURE = 0.2
# Tokens kept free in the model's window for the system prompt and the question.
_PROMPT_OVERHEAD = 320


@dataclass(frozen=True)
class Limits:
    max_message_chars: int = 32_000
    default_retrieval_limit: int = 4
    max_retrieval_limit: int = 20
    history_token_budget: int = 1024
    context_token_budget: int = 1500
    keepalive_seconds: float = 10.0
    default_timeout: float = 30.0
    provider_timeout: float = 30.0
    # Messages one conversation may hold (each turn adds two).
    max_conversation_messages: int = 1000


@dataclass
class Prepared:
    """Everything generation needs, after validation, history and retrieval."""

    inp: ChatInput
    tenant: str
    model: ChatModelSpec
    max_tokens: int
    temperature: float
    collection: str
    search_query: str
    passages: list[Passage]
    history: list[PromptMessage]
    history_summary: str
    conversation: Conversation | None
    message_id: str = field(default_factory=new_id)
    # Storing the conversation and the user's turn runs while the model starts answering
    # (it is off the time-to-first-token path); the assistant turn waits for it.
    persisted: asyncio.Future[None] | None = None


class ChatService:
    def __init__(
        self,
        registry: ModelRegistry,
        providers: Mapping[str, ChatProvider],
        store: ConversationStore,
        retriever: Retriever,
        limits: Limits,
        default_model: str,
        fallback_models: Sequence[str],
        default_collection: str,
        spend: SpendGuard | None = None,
    ) -> None:
        self.registry = registry
        self.providers = providers
        self.store = store
        self.retriever = retriever
        self.limits = limits
        self.default_model = registry.resolve(default_model)
        self.fallbacks = [registry.resolve(m) for m in fallback_models]
        self.default_collection = default_collection
        self.spend = spend
        self.system = SystemPrompt.create()
        self._background: set[asyncio.Task[None]] = set()

    # -- validation and preparation ----------------------------------------------------
    def validate(self, inp: ChatInput) -> tuple[ChatModelSpec, int, float]:
        """Rejects bad input with a 400 naming the field; returns model, max_tokens,
        temperature."""
        if not inp.message.strip():
            raise InvalidArgumentError(
                "message must not be empty or whitespace", reason="EMPTY_MESSAGE", field="message"
            )
        if len(inp.message) > self.limits.max_message_chars:
            raise InvalidArgumentError(
                f"message is {len(inp.message)} characters; the limit is "
                f"{self.limits.max_message_chars}",
                reason="MESSAGE_TOO_LARGE",
                field="message",
            )
        model = self.registry.resolve(inp.model) if inp.model else self.default_model
        if inp.max_tokens < 0:
            raise InvalidArgumentError(
                "max_tokens must not be negative", reason="INVALID_MAX_TOKENS", field="max_tokens"
            )
        if inp.max_tokens > model.max_output_tokens:
            raise InvalidArgumentError(
                f"max_tokens {inp.max_tokens} is above the limit of model {model.name!r} "
                f"({model.max_output_tokens})",
                reason="MAX_TOKENS_TOO_LARGE",
                field="max_tokens",
                metadata={"limit": str(model.max_output_tokens)},
            )
        temperature = DEFAULT_TEMPERATURE if inp.temperature is None else inp.temperature
        if not 0.0 <= temperature <= 2.0:
            raise InvalidArgumentError(
                "temperature must be between 0 and 2",
                reason="INVALID_TEMPERATURE",
                field="temperature",
            )
        if not 0 <= inp.limit <= self.limits.max_retrieval_limit:
            raise InvalidArgumentError(
                f"limit must be between 1 and {self.limits.max_retrieval_limit}",
                reason="INVALID_LIMIT",
                field="limit",
            )
        if inp.collection and not _COLLECTION.match(inp.collection):
            raise InvalidArgumentError(
                "collection must be 1-64 letters, digits, '_', '.' or '-'",
                reason="INVALID_COLLECTION",
                field="collection",
            )
        if inp.conversation_id and not _ID.match(inp.conversation_id):
            raise InvalidArgumentError(
                "conversation_id is not a valid id",
                reason="INVALID_CONVERSATION_ID",
                field="conversation_id",
            )
        return model, inp.max_tokens or model.default_max_tokens, temperature

    async def prepare(self, inp: ChatInput, tenant: str) -> Prepared:
        model, max_tokens, temperature = self.validate(inp)
        conversation: Conversation | None = None
        stored: list[StoredMessage] = []
        if inp.persist and inp.conversation_id:
            conversation = await self.store.get(tenant, inp.conversation_id, with_messages=True)
            if conversation.message_count + 2 > self.limits.max_conversation_messages:
                raise FailedPreconditionError(
                    f"this conversation has reached its limit of "
                    f"{self.limits.max_conversation_messages} messages; start a new one",
                    reason="CONVERSATION_FULL",
                    field="conversation_id",
                )
            stored = conversation.messages
        collection = (
            inp.collection
            or (conversation.collection if conversation else "")
            or self.default_collection
        )
        if inp.persist:
            previous = [m.search_query or m.content for m in stored if m.role == "user"]
            history, summary = bounded_history(stored, self._history_budget(model))
        else:
            previous = [m.content for m in inp.history if m.role == "user"]
            history, summary = _bounded_given(inp.history, self._history_budget(model))
        search_query = standalone_query(inp.message, previous)
        passages = await self.retriever.search(
            tenant,
            search_query,
            collection,
            inp.limit or self.limits.default_retrieval_limit,
            inp.filters,
        )
        prepared = Prepared(
            inp,
            tenant,
            model,
            max_tokens,
            temperature,
            collection,
            search_query,
            passages,
            history,
            summary,
            conversation,
        )
        if inp.persist:
            new = conversation is None
            if conversation is None:
                t = now()
                title = " ".join(inp.message.split())[:80]
                conversation = Conversation(
                    new_id(), tenant, title, collection, model.name, t, t, 0
                )
                prepared.conversation = conversation
            prepared.persisted = asyncio.ensure_future(
                self._persist_user(prepared, conversation, new)
            )
        return prepared

    async def _persist_user(self, p: Prepared, conversation: Conversation, new: bool) -> None:
        if new:
            await self.store.create(
                p.tenant,
                conversation.title,
                p.collection,
                p.model.name,
                conversation_id=conversation.conversation_id,
            )
        await self.store.append(
            p.tenant,
            conversation.conversation_id,
            StoredMessage(
                message_id=new_id(),
                role="user",
                content=p.inp.message,
                status=COMPLETE,
                sequence=0,
                created_at=now(),
                search_query=p.search_query,
            ),
            collection=p.collection,
        )

    def _history_budget(self, model: ChatModelSpec) -> int:
        if model.context_tokens == 0:
            return self.limits.history_token_budget
        room = model.context_tokens - model.default_max_tokens - _PROMPT_OVERHEAD
        return max(0, min(self.limits.history_token_budget, room // 4))

    def _context_budget(self, model: ChatModelSpec, max_tokens: int, history: int) -> int:
        if model.context_tokens == 0:
            return self.limits.context_token_budget
        room = model.context_tokens - max_tokens - history - _PROMPT_OVERHEAD
        return max(64, min(self.limits.context_token_budget, room))

    # -- generation ----------------------------------------------------------------------
    async def stream(self, inp: ChatInput, tenant: str) -> AsyncIterator[Event]:
        """Events of one answer. Errors before any event raise (so REST can still answer
        with an HTTP status); after that they arrive as an ErrorEvent that ends the stream."""
        prepared = await self.prepare(inp, tenant)
        sent = False
        try:
            async for event in with_keepalive(
                self._generate(prepared), self.limits.keepalive_seconds
            ):
                sent = True
                yield event
        except RaglineError as exc:
            if not sent:
                raise
            yield ErrorEvent(int(exc.to_status().code), exc.message, exc.reason)

    async def chat(self, inp: ChatInput, tenant: str) -> ChatResult:
        prepared = await self.prepare(inp, tenant)
        parts: list[str] = []
        citations: list[Citation] = []
        usage = Usage()
        model = prepared.model.name
        finish = "stop"
        async for event in self._generate(prepared):
            if isinstance(event, Start):
                model = event.model
            elif isinstance(event, Delta):
                parts.append(event.text)
            elif isinstance(event, CitationEvent):
                citations.append(event.citation)
            elif isinstance(event, UsageEvent):
                usage = event.usage
            elif isinstance(event, Done):
                finish = event.finish_reason
        return ChatResult(
            answer="".join(parts),
            citations=citations,
            conversation_id=prepared.conversation.conversation_id if prepared.conversation else "",
            usage=usage,
            model=model,
            finish_reason=finish,
            message_id=prepared.message_id if prepared.inp.persist else "",
            search_query=prepared.search_query,
        )

    def _candidates(self, requested: ChatModelSpec) -> list[ChatModelSpec]:
        return [requested, *(m for m in self.fallbacks if m != requested)]

    def _request(self, p: Prepared, model: ChatModelSpec) -> GenerationRequest:
        max_tokens = min(p.max_tokens, model.max_output_tokens)
        history_tokens = sum(estimate_tokens(m.content) for m in p.history)
        budget = self._context_budget(model, max_tokens, history_tokens)
        passages = select_passages(p.passages, budget)
        messages = build_messages(
            self.system, p.inp.message, passages, p.history, p.history_summary, budget
        )
        return GenerationRequest(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            temperature=p.temperature,
            question=p.search_query,
            passages=passages,
            tenant=p.tenant,
        )

    async def _open(
        self, p: Prepared
    ) -> tuple[ChatModelSpec, GenerationRequest, AsyncIterator[Chunk], Chunk | None]:
        """Starts the first model that answers, in fallback order; returns its first chunk."""
        last: RaglineError | None = None
        for model in self._candidates(p.model):
            if self.spend is not None and model.cost(1000, 1000) > 0:
                try:
                    await self.spend.check(p.tenant)
                except ResourceExhaustedError as exc:
                    # Over the tenant's cap for paid models: a free fallback may still answer.
                    last = exc
                    continue
            request = self._request(p, model)
            stream = self.providers[model.provider].stream(
                request,
                min(self.limits.provider_timeout, deadlines.remaining(self.limits.default_timeout)),
            )
            try:
                first = await anext(stream, None)
            except (UnavailableError, DeadlineExceededError) as exc:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
                if deadlines.remaining(self.limits.default_timeout) <= 0:
                    raise
                log.warning(
                    "chat provider failed; trying the next model",
                    extra={"model": model.name, "reason": exc.reason},
                )
                last = exc
                continue
            return model, request, stream, first
        assert last is not None
        raise last

    async def _generate(self, p: Prepared) -> AsyncIterator[Event]:
        conversation_id = p.conversation.conversation_id if p.conversation else ""
        guard = OutputGuard(self.system)
        sent: list[str] = []
        model = p.model
        try:
            try:
                model, request, stream, first = await self._open(p)
            except RaglineError as exc:
                await self._save_assistant(p, model, "", FAILED, [], Usage(), exc.reason)
                raise
            yield Start(conversation_id, model.name, p.search_query)
            last = Chunk()
            try:
                chunk = first
                while chunk is not None:
                    if chunk.text:
                        safe = guard.feed(chunk.text)
                        if safe:
                            sent.append(safe)
                            yield Delta(safe)
                        if guard.tripped:
                            break
                    if chunk.finish_reason is not None:
                        last = chunk
                    chunk = await anext(stream, None)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            if guard.tripped:
                log.warning(
                    "answer repeated the system prompt; withheld", extra={"model": model.name}
                )
                yield Delta(("\n" if sent else "") + REFUSAL)
                citations: list[Citation] = []
            else:
                rest = guard.flush()
                if rest:
                    sent.append(rest)
                    yield Delta(rest)
                citations = list(last.citations) or cite(guard.text, request.passages)
            usage = self._usage(p, model, request, guard.answer, last)
            await self._save_assistant(p, model, guard.answer, COMPLETE, citations, usage, "")
            for c in citations:
                yield CitationEvent(c)
            yield UsageEvent(usage)
            yield Done(last.finish_reason or "stop", p.message_id if p.inp.persist else "")
        except RaglineError as exc:
            if sent or guard.text:
                await self._save_assistant(p, model, "".join(sent), FAILED, [], Usage(), exc.reason)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: keep what was sent, marked cancelled.
            self._spawn(
                self._save_assistant(
                    p, model, "".join(sent), CANCELLED, [], Usage(), "CLIENT_CANCELLED"
                )
            )
            raise

    def _usage(
        self,
        p: Prepared,
        model: ChatModelSpec,
        request: GenerationRequest,
        answer: str,
        last: Chunk,
    ) -> Usage:
        if model.provider == "extractive":
            prompt = completion = 0
        else:
            prompt = (
                last.prompt_tokens
                if last.prompt_tokens is not None
                else sum(estimate_tokens(m.content) + 4 for m in request.messages)
            )
            completion = (
                last.completion_tokens
                if last.completion_tokens is not None
                else estimate_tokens(answer)
            )
        cost = model.cost(prompt, completion)
        if prompt:
            TOKENS.labels(model.provider, model.name, "input", p.tenant).inc(prompt)
        if completion:
            TOKENS.labels(model.provider, model.name, "output", p.tenant).inc(completion)
        if cost:
            COST.labels(model.provider, model.name, p.tenant).inc(cost)
            if self.spend is not None:
                self._spawn(self.spend.record(p.tenant, cost))
        return Usage(prompt, completion, round(cost, 8))

    async def _save_assistant(
        self,
        p: Prepared,
        model: ChatModelSpec,
        content: str,
        status: str,
        citations: list[Citation],
        usage: Usage,
        error_reason: str,
    ) -> None:
        if not p.inp.persist or p.conversation is None:
            return
        if p.persisted is not None:
            try:
                await p.persisted
            except RaglineError:
                log.exception("could not store the conversation or the user's turn")
                if status == COMPLETE:
                    raise
                return
        message = StoredMessage(
            message_id=p.message_id,
            role="assistant",
            content=content,
            status=status,
            sequence=0,
            created_at=now(),
            model=model.name,
            citations=citations,
            usage=usage,
            error_reason=error_reason,
        )
        try:
            await self.store.append(
                p.tenant, p.conversation.conversation_id, message, model=model.name
            )
        except RaglineError:
            log.exception("could not store the assistant turn")
            if status == COMPLETE:
                raise

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- conversations -------------------------------------------------------------------
    async def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        if not _ID.match(conversation_id):
            raise InvalidArgumentError(
                "conversation_id is not a valid id",
                reason="INVALID_CONVERSATION_ID",
                field="conversation_id",
            )
        return await self.store.get(tenant, conversation_id, with_messages=True)

    async def list_conversations(
        self, tenant: str, page_size: int, page_token: str
    ) -> tuple[list[Conversation], str]:
        if not 0 <= page_size <= 100:
            raise InvalidArgumentError(
                "page_size must be between 1 and 100", reason="INVALID_PAGE_SIZE", field="page_size"
            )
        return await self.store.list(tenant, page_size or 20, page_token)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> int:
        if not _ID.match(conversation_id):
            raise InvalidArgumentError(
                "conversation_id is not a valid id",
                reason="INVALID_CONVERSATION_ID",
                field="conversation_id",
            )
        return await self.store.delete(tenant, conversation_id)

    async def drain(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _bounded_given(
    history: Sequence[PromptMessage], budget: int
) -> tuple[list[PromptMessage], str]:
    stored = [
        StoredMessage(new_id(), m.role, m.content, COMPLETE, i, now())
        for i, m in enumerate(history)
        if m.role in ("user", "assistant")
    ]
    return bounded_history(stored, budget)


async def with_keepalive(events: AsyncIterator[Event], interval: float) -> AsyncIterator[Event]:
    """Passes `events` through, adding a Ping whenever none arrived for `interval` seconds."""
    started = time.monotonic()
    iterator = aiter(events)
    pending: asyncio.Future[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield Ping(round(time.monotonic() - started, 3))
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await iterator.aclose()  # type: ignore[attr-defined]

"""OpenAI chat models, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp server),
through the official SDK. Retries (429, 5xx, connection errors) happen only before the
first token; after that a failure ends the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai

from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_core.errors import RaglineError
from ragline_core.metrics import PROVIDER_REQUESTS
from ragline_core.paid_calls import call_paid_provider
from ragline_core.provider_errors import SdkErrors, not_configured
from ragline_core.retry import RetryPolicy

ERRORS = SdkErrors(openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError)


class OpenAIChatProvider:
    def __init__(
        self,
        name: str,
        key_variable: str,
        api_key: str | None,
        base_url: str | None,
        policy: RetryPolicy,
        default_timeout: float,
        attempt_timeout: float,
        *,
        require_key: bool = True,
    ) -> None:
        self.name = name
        self.key_variable = key_variable
        self.policy = policy
        self.default_timeout = default_timeout
        self.attempt_timeout = attempt_timeout
        self._client: openai.AsyncOpenAI | None = None
        if api_key or (not require_key and base_url):
            self._client = openai.AsyncOpenAI(
                api_key=api_key or "not-needed",
                base_url=base_url,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(
                    limits=httpx2.Limits(max_connections=50, max_keepalive_connections=20)
                ),
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def unavailable_reason(self) -> str:
        return "" if self.configured else f"{self.key_variable} is not set"

    async def stream(self, request: GenerationRequest, timeout: float) -> AsyncIterator[Chunk]:
        client = self._client
        if client is None:
            raise not_configured(self.name, request.model.name, self.key_variable)
        model = request.model.name
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]

        async def attempt(budget: float) -> Any:
            return await client.chat.completions.create(
                model=model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                timeout=min(budget, timeout, self.attempt_timeout),
            )

        stream = await call_paid_provider(
            self.name,
            model,
            attempt,
            policy=self.policy,
            default_timeout=self.default_timeout,
            retryable=ERRORS.retryable,
            translate=self._translate,
        )
        finish: str | None = None
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    prompt_tokens = int(chunk.usage.prompt_tokens)
                    completion_tokens = int(chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield Chunk(text=choice.delta.content)
                    if choice.finish_reason:
                        finish = str(choice.finish_reason)
        except RaglineError:
            raise
        except Exception as exc:
            PROVIDER_REQUESTS.labels(self.name, model, "error").inc()
            raise self._translate(exc) from None
        finally:
            # Closing the HTTP stream is what stops a remote model generating.
            await stream.close()
        PROVIDER_REQUESTS.labels(self.name, model, "ok").inc()
        yield Chunk(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish or "stop",
        )

    def _translate(self, exc: BaseException) -> RaglineError:
        return ERRORS.translate(self.name, self.key_variable, exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

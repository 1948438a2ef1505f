"""Anthropic chat models through the official SDK (Messages API, streamed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_core.errors import RaglineError
from ragline_core.metrics import PROVIDER_REQUESTS
from ragline_core.paid_calls import call_paid_provider
from ragline_core.provider_errors import SdkErrors, not_configured
from ragline_core.retry import RetryPolicy

ERRORS = SdkErrors(
    anthropic.APIConnectionError, anthropic.APITimeoutError, anthropic.APIStatusError
)

_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicProvider:
    name = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        policy: RetryPolicy,
        default_timeout: float,
        attempt_timeout: float,
    ) -> None:
        self.policy = policy
        self.default_timeout = default_timeout
        self.attempt_timeout = attempt_timeout
        self._client: anthropic.AsyncAnthropic | None = None
        if api_key:
            self._client = anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, max_retries=0
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
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns: list[Any] = [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ]

        async def attempt(budget: float) -> Any:
            return await client.messages.create(
                model=model,
                system=system,
                messages=turns,
                max_tokens=request.max_tokens,
                stream=True,
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
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        finish = "stop"
        try:
            async for event in stream:
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    prompt_tokens = int(event.message.usage.input_tokens)
                elif kind == "content_block_delta" and event.delta.type == "text_delta":
                    yield Chunk(text=event.delta.text)
                elif kind == "message_delta":
                    completion_tokens = int(event.usage.output_tokens)
                    if event.delta.stop_reason:
                        finish = _STOP_REASONS.get(str(event.delta.stop_reason), "stop")
        except RaglineError:
            raise
        except Exception as exc:
            PROVIDER_REQUESTS.labels(self.name, model, "error").inc()
            raise self._translate(exc) from None
        finally:
            await stream.close()
        PROVIDER_REQUESTS.labels(self.name, model, "ok").inc()
        yield Chunk(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=finish
        )

    def _translate(self, exc: BaseException) -> RaglineError:
        return ERRORS.translate(self.name, self.key_variable, exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

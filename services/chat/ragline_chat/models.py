"""The chat models ragline knows: provider, limits and prices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragline_core.errors import InvalidArgumentError

EXTRACTIVE = "extractive"
# The same extractive answerer, answering a factoid question with its answer span only.
EXTRACTIVE_SPAN = "extractive-span"
LOCAL = "local"
LOCAL_MODEL_ID = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ChatModelSpec:
    """One chat model."""

    name: str
    # "extractive", "local", "openai", "openai_compatible" or "anthropic"
    provider: str
    context_tokens: int
    max_output_tokens: int
    default_max_tokens: int
    usd_per_million_input: float = 0.0
    usd_per_million_output: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Estimated US dollars for one call."""
        return (
            prompt_tokens * self.usd_per_million_input
            + completion_tokens * self.usd_per_million_output
        ) / 1_000_000


BUILTIN: tuple[ChatModelSpec, ...] = (
    ChatModelSpec(EXTRACTIVE, "extractive", 0, 1024, 256),
    ChatModelSpec(EXTRACTIVE_SPAN, "extractive", 0, 1024, 256),
    ChatModelSpec(LOCAL, "local", 2048, 512, 192),
    ChatModelSpec("gpt-4o-mini", "openai", 128_000, 16_384, 1024, 0.15, 0.60),
    ChatModelSpec("gpt-4o", "openai", 128_000, 16_384, 1024, 2.50, 10.00),
    ChatModelSpec("gpt-4.1-mini", "openai", 1_047_576, 32_768, 1024, 0.40, 1.60),
    ChatModelSpec("gpt-4.1-nano", "openai", 1_047_576, 32_768, 1024, 0.10, 0.40),
    ChatModelSpec("claude-haiku-4-5", "anthropic", 200_000, 64_000, 1024, 1.00, 5.00),
    ChatModelSpec("claude-sonnet-4-5", "anthropic", 200_000, 64_000, 1024, 3.00, 15.00),
)


# Model names a paid provider serves beyond the catalogue (gpt-3.5-turbo, o3-mini...): with
# its key set they are passed through, priced as unknown (0; docs/chat.md).
PASSTHROUGH_PREFIXES: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-", "chatgpt-", "o1", "o3", "o4"),
    "anthropic": ("claude-",),
}
_MAX_PASSTHROUGH = 256


class ModelRegistry:
    """Built-in models plus the models of a configured OpenAI-compatible server, and any
    other model name of a provider whose key is set (`passthrough`: provider names)."""

    def __init__(
        self, compatible_models: Iterable[str] = (), passthrough: Iterable[str] = ()
    ) -> None:
        self.models: dict[str, ChatModelSpec] = {m.name: m for m in BUILTIN}
        for name in compatible_models:
            if name not in self.models:
                self.models[name] = ChatModelSpec(name, "openai_compatible", 8192, 4096, 512)
        self.passthrough = tuple(passthrough)
        # Passed-through names seen so far (bounded: names come from clients).
        self._extra: dict[str, ChatModelSpec] = {}

    def _passed_through(self, name: str) -> ChatModelSpec | None:
        for provider in self.passthrough:
            if name.startswith(PASSTHROUGH_PREFIXES.get(provider, ())) and len(name) <= 64:
                spec = self._extra.get(name)
                if spec is None:
                    if len(self._extra) >= _MAX_PASSTHROUGH:
                        self._extra.clear()
                    # Limits unknown: the provider enforces its own; no price known.
                    spec = self._extra[name] = ChatModelSpec(name, provider, 16_384, 4096, 1024)
                return spec
        return None

    def resolve(self, name: str) -> ChatModelSpec:
        """The model for `name`, or a 400 that lists the valid names."""
        spec = self.models.get(name) or self._passed_through(name)
        if spec is None:
            raise InvalidArgumentError(
                f"unknown model {name!r}; valid models: {', '.join(self.models)}",
                reason="UNKNOWN_MODEL",
                field="model",
                metadata={"valid_models": ",".join(self.models)},
            )
        return spec

    def ordered(self, default: str) -> Sequence[ChatModelSpec]:
        first = self.models[default]
        return [first, *(m for m in self.models.values() if m is not first)]

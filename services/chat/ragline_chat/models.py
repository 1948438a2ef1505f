"""The chat models ragline knows: provider, limits and prices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragline_core.errors import InvalidArgumentError

EXTRACTIVE = "extractive"
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
    ChatModelSpec(LOCAL, "local", 2048, 512, 192),
    ChatModelSpec("gpt-4o-mini", "openai", 128_000, 16_384, 1024, 0.15, 0.60),
    ChatModelSpec("gpt-4o", "openai", 128_000, 16_384, 1024, 2.50, 10.00),
    ChatModelSpec("gpt-4.1-mini", "openai", 1_047_576, 32_768, 1024, 0.40, 1.60),
    ChatModelSpec("gpt-4.1-nano", "openai", 1_047_576, 32_768, 1024, 0.10, 0.40),
    ChatModelSpec("claude-haiku-4-5", "anthropic", 200_000, 64_000, 1024, 1.00, 5.00),
    ChatModelSpec("claude-sonnet-4-5", "anthropic", 200_000, 64_000, 1024, 3.00, 15.00),
)


class ModelRegistry:
    """Built-in models plus the models of a configured OpenAI-compatible server."""

    def __init__(self, compatible_models: Iterable[str] = ()) -> None:
        self.models: dict[str, ChatModelSpec] = {m.name: m for m in BUILTIN}
        for name in compatible_models:
            if name not in self.models:
                self.models[name] = ChatModelSpec(name, "openai_compatible", 8192, 4096, 512)

    def resolve(self, name: str) -> ChatModelSpec:
        """The model for `name`, or a 400 that lists the valid names."""
        spec = self.models.get(name)
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

"""Chat settings: the core settings plus models, providers, limits and the HTTP edge."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from ragline_core.settings import CoreSettings


def _split(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "none":
        return []
    if isinstance(value, str):
        return [m.strip() for m in value.split(",") if m.strip()]
    return value


class ChatSettings(CoreSettings):
    """Environment of the chat service."""

    # Model used when a request names none. "extractive" answers best on the labelled QA
    # set (see docs/chat.md); "local" runs SmolLM2-135M with no keys either.
    CHAT_DEFAULT_MODEL: str = "extractive"
    # Models tried in order when the requested model's provider fails before answering
    # ("none": no fallback, a provider failure answers 503).
    CHAT_FALLBACK_MODELS: Annotated[list[str], NoDecode] = ["extractive"]
    CHAT_DEFAULT_COLLECTION: str = "default"
    # Chunks retrieved per question by default, and the most a request may ask for.
    CHAT_RETRIEVAL_LIMIT: int = Field(default=4, ge=1, le=20)
    CHAT_MAX_RETRIEVAL_LIMIT: int = Field(default=20, ge=1, le=100)
    # Cosine (keyless local model) the question must reach with its best chunk for the
    # chunks to be context; below it the answer is "I don't know" (0: off). Chosen on the QA
    # set's tune split (docs/chat.md, "I don't know").
    CHAT_RELEVANCE_FLOOR: float = Field(default=0.22, ge=0.0, le=1.0)
    # Longest accepted message (the gateway also caps chat bodies, answering 413).
    CHAT_MAX_MESSAGE_CHARS: int = Field(default=32_000, ge=1)
    # Messages one conversation may hold (a turn adds two); past it, 400 CONVERSATION_FULL.
    # Bounds what reading a conversation costs (one lookup per message).
    CHAT_MAX_CONVERSATION_MESSAGES: int = Field(default=1000, ge=2, le=100_000)
    # Days a conversation is kept after its last message, then deleted with its messages by
    # an hourly sweep (0: kept until deleted). A chat without a conversation id starts one,
    # so without this the database grows with every such chat (docs/reliability.md, soak).
    CHAT_CONVERSATION_RETENTION_DAYS: float = Field(default=0.0, ge=0.0, le=36_500)
    # Tokens of earlier turns sent to the model; older turns are summarised in one line.
    CHAT_HISTORY_TOKEN_BUDGET: int = Field(default=1024, ge=0)
    # Tokens of retrieved text put in the prompt.
    CHAT_CONTEXT_TOKEN_BUDGET: int = Field(default=1500, ge=64)
    # Seconds between keep-alive events on a quiet stream.
    CHAT_KEEPALIVE_SECONDS: float = Field(default=10.0, gt=0, le=300)
    # HTTP edge of the chat service: WebSocket chat and the OpenAI-compatible API.
    CHAT_HTTP_ADDR: str = "127.0.0.1:50063"
    # Longest life of a chat WebSocket, seconds; then it closes with 4408 (reconnect).
    CHAT_WS_MAX_SESSION_SECONDS: float = Field(default=3600.0, ge=1.0, le=86_400.0)
    # envoyproxy/ratelimit's gRPC address: each WebSocket message counts against the key's
    # chat limit, like a request through the gateway. "none": messages are not limited.
    RATELIMIT_ADDR: str | None = "127.0.0.1:8081"

    # OpenAI chat models; CHAT_OPENAI_BASE_URL overrides OPENAI_BASE_URL for chat only.
    CHAT_OPENAI_BASE_URL: str | None = None
    # Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server) and the models it serves.
    OPENAI_COMPATIBLE_BASE_URL: str | None = None
    OPENAI_COMPATIBLE_API_KEY: SecretStr | None = None
    OPENAI_COMPATIBLE_MODELS: Annotated[list[str], NoDecode] = []
    ANTHROPIC_API_KEY: SecretStr | None = None
    ANTHROPIC_BASE_URL: str | None = None

    PROVIDER_MAX_ATTEMPTS: int = Field(default=3, ge=1, le=10)
    PROVIDER_BACKOFF_BASE: float = Field(default=0.5, ge=0)
    # Retry budget per paid provider and process (gRPC's retry throttling): each failed
    # attempt costs a token, each success earns PROVIDER_RETRY_BUDGET_RATIO back, and
    # retries stop while fewer than half of PROVIDER_RETRY_BUDGET_TOKENS are left
    # (0: no budget). docs/reliability.md.
    PROVIDER_RETRY_BUDGET_TOKENS: float = Field(default=10.0, ge=0, le=10_000)
    PROVIDER_RETRY_BUDGET_RATIO: float = Field(default=0.1, gt=0, le=100)
    PROVIDER_BACKOFF_MAX: float = Field(default=8.0, ge=0)
    # Longest wait for a provider's first token (and between tokens).
    PROVIDER_TIMEOUT: float = Field(default=30.0, gt=0, le=600)

    # Local model (SmolLM2-135M-Instruct GGUF via llama-cpp-python), run in a supervised
    # child process (docs/chat.md, "The local model, isolated in a child process").
    CHAT_LOCAL_MODEL_PATH: str | None = None
    CHAT_LOCAL_THREADS: int = Field(default=1, ge=1, le=64)
    CHAT_LOCAL_CONTEXT_TOKENS: int = Field(default=2048, ge=512, le=8192)
    CHAT_LOCAL_ENABLED: bool = True
    # Where the CPU's features are read before the model is started (a test points it at a
    # file that simulates another CPU).
    CHAT_LOCAL_CPUINFO_PATH: str = "/proc/cpuinfo"

    @field_validator("RATELIMIT_ADDR", mode="before")
    @classmethod
    def _no_limiter(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("CHAT_FALLBACK_MODELS", "OPENAI_COMPATIBLE_MODELS", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _split(value)

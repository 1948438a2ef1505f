"""Typed settings from the environment (and a `.env` file), shared by every service.

A bad value stops start-up with a message that names the variable: see `load_settings`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class CoreSettings(BaseSettings):
    """Settings every service reads. Names match the documented environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        env_ignore_empty=True,
    )

    API_TITLE: str = "RAG API Service"
    API_VERSION: str = "1.0.0"
    # "production": a service refuses to start with a development default (dev keys, the
    # default API_KEY_PEPPER, an unencrypted JWT signing key), naming the variable to set.
    ENVIRONMENT: Literal["development", "production"] = "development"
    API_PORT: int = Field(default=8000, ge=1, le=65535, description="Gateway (Envoy) port")
    API_WORKERS: int = Field(
        default=1, ge=1, le=64, description="Worker processes per service sharing its port"
    )
    VALID_API_KEYS: Annotated[list[str], NoDecode] = ["dev-key-1", "dev-key-2"]
    CORS_ORIGINS: Annotated[list[str], NoDecode] = ["http://localhost:3000"]

    MONGODB_URI: SecretStr = SecretStr("mongodb://localhost:27017")
    MONGODB_DATABASE: str = Field(default="rag_production", min_length=1, max_length=63)
    REDIS_URL: SecretStr = SecretStr("redis://localhost:6379")

    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_BASE_URL: str | None = None
    VOYAGE_AI_API_KEY: SecretStr | None = None
    VOYAGE_BASE_URL: str | None = None

    MAX_BATCH_SIZE: int = Field(default=100, ge=1, le=2048)
    REQUEST_TIMEOUT: float = Field(default=30.0, gt=0, le=600)
    CACHE_TTL: int = Field(default=3600, ge=1)
    SEARCH_CACHE_TTL: int = Field(default=300, ge=1)
    LOG_LEVEL: LogLevel = "INFO"
    ENABLE_METRICS: bool = True
    ENABLE_REFLECTION: bool = True

    # Where each service listens (gRPC) and exposes Prometheus metrics.
    EMBEDDER_ADDR: str = "127.0.0.1:50051"
    RETRIEVER_ADDR: str = "127.0.0.1:50052"
    CHAT_ADDR: str = "127.0.0.1:50053"
    INGEST_ADDR: str = "127.0.0.1:50054"
    AUTH_ADDR: str = "127.0.0.1:50055"
    METRICS_HOST: str = "127.0.0.1"
    EMBEDDER_METRICS_PORT: int = Field(default=9101, ge=1, le=65535)
    RETRIEVER_METRICS_PORT: int = Field(default=9102, ge=1, le=65535)
    CHAT_METRICS_PORT: int = Field(default=9103, ge=1, le=65535)
    INGEST_METRICS_PORT: int = Field(default=9104, ge=1, le=65535)
    AUTH_METRICS_PORT: int = Field(default=9105, ge=1, le=65535)

    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = None
    OTEL_SERVICE_NAMESPACE: str = "ragline"

    # Daily spend cap per tenant for paid models, USD (0: none), and per-tenant overrides
    # as a JSON object, e.g. {"acme": 25}.
    SPEND_CAP_USD_PER_DAY: float = Field(default=0.0, ge=0)
    TENANT_SPEND_CAPS: dict[str, float] = {}

    # Dense vectors: "local" (each retriever holds an in-memory index) or "atlas" (MongoDB
    # Atlas Vector Search over the chunks collection; see docs/retrieval.md).
    VECTOR_BACKEND: Literal["local", "atlas"] = "local"
    ATLAS_VECTOR_INDEX: str = "ragline_chunks_vector"
    ATLAS_NUM_CANDIDATES_FACTOR: int = Field(default=10, ge=1, le=100)

    # Keys of the internal identity tokens every hop verifies (ragline_core.caller): a
    # comma-separated list of secrets of 32+ characters; the first signs, all verify (add
    # the new key second, roll out, move it first, then drop the old one). Required: a
    # service does not start without it (`make run` generates one into run/).
    INTERNAL_TOKEN_KEYS: SecretStr | None = None
    # Lifetime of an internal token, seconds (the gateway's key cache reuses one for at most
    # GATEWAY_KEY_CACHE_TTL, 10 s, so it must stay longer).
    INTERNAL_TOKEN_TTL_S: int = Field(default=60, ge=15, le=3600)
    # User JWTs (POST /api/v1/tokens): issuer and audience the auth service signs and every
    # service verifies.
    JWT_ISSUER: str = "ragline"
    JWT_AUDIENCE: str = "ragline-api"

    # Mutual TLS between the gateway and the services and between services (docs/gateway.md):
    # a folder with this workload's tls.crt, tls.key and ca.crt (a kubernetes.io/tls Secret
    # or cert-manager's layout). Set, the gRPC port accepts only clients with a certificate
    # from that CA, and calls to other services present this one. Unset: plaintext.
    INTERNAL_TLS_DIR: str | None = None
    # A plaintext listener that serves only grpc.health.v1 (e.g. 0.0.0.0:50050), for probes
    # that cannot speak mutual TLS such as Kubernetes' native gRPC probes. Unset: none.
    HEALTH_ADDR: str | None = None

    # On SIGTERM: report NOT_SERVING for DRAIN_DELAY seconds while still serving every call
    # (in flight and new), so load balancers take the host out before its listener closes
    # (Envoy's health check needs 2 intervals of 2 s: at least 4 s), then wait up to
    # SHUTDOWN_GRACE seconds for in-flight calls.
    DRAIN_DELAY: float = Field(default=5.0, ge=0, le=60)
    SHUTDOWN_GRACE: float = Field(default=10.0, ge=0, le=300)
    # Admission control: the calls one process works on at once (probes, reflection and the
    # gateway's own calls not counted). One more is refused at once with 429 SERVER_BUSY and
    # Retry-After: 1, instead of queueing behind the others until its deadline passes
    # (docs/reliability.md, scenario 9). 0: no cap.
    MAX_IN_FLIGHT: int = Field(default=64, ge=0, le=100_000)

    @field_validator("VALID_API_KEYS", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            raise ValueError('must be a JSON list, e.g. ["http://localhost:3000"]')
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be a JSON list: {exc.msg}") from None
        return value

    def internal_token_keys(self) -> list[str]:
        raw = self.INTERNAL_TOKEN_KEYS.get_secret_value() if self.INTERNAL_TOKEN_KEYS else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    def service_addr(self, service: str) -> str:
        """gRPC address of a ragline service by name ("embedder", "retriever", ...)."""
        addr: str = getattr(self, f"{service.upper()}_ADDR")
        return addr

    def metrics_port(self, service: str) -> int:
        """Prometheus port of a ragline service by name."""
        port: int = getattr(self, f"{service.upper()}_METRICS_PORT")
        return port


S = TypeVar("S", bound=BaseSettings)


def make_settings(cls: type[S]) -> S:
    """Settings from the environment and the env file (RAGLINE_ENV_FILE, default .env)."""
    return cls(_env_file=os.environ.get("RAGLINE_ENV_FILE", ".env"))


def load_settings(cls: type[S]) -> S:
    """Reads settings or exits with one line per bad variable (never echoing secrets)."""
    try:
        return make_settings(cls)
    except SettingsError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"invalid configuration: {name}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None

"""Auth service settings: the core settings plus key, token and cache choices."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ragline_core.settings import CoreSettings


class AuthSettings(CoreSettings):
    """Environment of the auth service."""

    # Server-side secret mixed into every key hash (HMAC-SHA256). A database dump without
    # it cannot be used to test guesses. Set it in production; changing it invalidates
    # every stored key.
    API_KEY_PEPPER: SecretStr = SecretStr("ragline-development-pepper-change-me")
    # Store the keys of VALID_API_KEYS as development keys (turn off in production).
    SEED_DEV_KEYS: bool = True
    # Tenant, scopes and tier of the development keys in VALID_API_KEYS: key i (from 1)
    # belongs to tenant "<prefix><i>", so dev-key-1 and dev-key-2 are different tenants.
    DEV_KEYS_TENANT_PREFIX: str = Field(default="dev-", min_length=1, max_length=32)
    DEV_KEYS_SCOPES: str = "embeddings,search,chat,ingest,analytics,admin"
    DEV_KEYS_TIER: str = "standard"
    # Seconds a key lookup is cached per auth process. Revocations also reach every
    # process at once over Redis pub/sub; this TTL bounds the delay when Redis is down.
    KEY_CACHE_TTL: float = Field(default=2.0, ge=0.0, le=60.0)
    # Seconds the gateway may reuse an API key's check without asking this service again
    # (per Envoy worker, envoy/key_cache.lua; never past the key's expiry). Revocation takes
    # up to this long to reach the gateway. 0 = every request is checked here.
    GATEWAY_KEY_CACHE_TTL: float = Field(default=1.0, ge=0.0, le=10.0)
    # Default grace period of a rotated key, seconds.
    KEY_ROTATION_GRACE: int = Field(default=86_400, ge=0, le=30 * 86_400)
    # JWTs from POST /api/v1/tokens: lifetime (seconds, also the maximum), issuer, audience.
    JWT_TTL: int = Field(default=900, ge=10, le=86_400)
    JWT_ISSUER: str = "ragline"
    JWT_AUDIENCE: str = "ragline-api"
    # Seconds between usage writes: access logs are counted in memory and written to
    # MongoDB (one bulk write of per-bucket $inc upserts) this often, and once at shutdown.
    USAGE_FLUSH_INTERVAL: float = Field(default=1.0, ge=0.05, le=60.0)
    # The generated OpenAPI document served at /openapi.json (default: gen/openapi/).
    OPENAPI_PATH: str | None = None

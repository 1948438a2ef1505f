"""Auth service settings: the core settings plus key, token and cache choices."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ragline_auth.oidc import parse_role_map
from ragline_auth.signing_keys import parse_encryption_keys
from ragline_core.settings import CoreSettings

DEV_PEPPER = "ragline-development-pepper-change-me"
# The development keys every checkout knows (VALID_API_KEYS' default).
DEV_KEYS = tuple(CoreSettings.model_fields["VALID_API_KEYS"].default)
MIN_SECRET_CHARS = 32


class AuthSettings(CoreSettings):
    """Environment of the auth service."""

    # Server-side secret mixed into every key hash (HMAC-SHA256). A database dump without
    # it cannot be used to test guesses. Set it in production; changing it invalidates
    # every stored key.
    API_KEY_PEPPER: SecretStr = SecretStr(DEV_PEPPER)
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
    # A client address that presents more unknown API keys than this within
    # AUTH_FAILURE_WINDOW_S seconds gets 429 TOO_MANY_FAILED_ATTEMPTS until the window
    # ends (counted per auth replica; 0 = no limit).
    AUTH_MAX_FAILURES_PER_ADDRESS: int = Field(default=30, ge=0, le=1_000_000)
    AUTH_FAILURE_WINDOW_S: float = Field(default=60.0, gt=0.0, le=86_400.0)
    # Default grace period of a rotated key, seconds.
    KEY_ROTATION_GRACE: int = Field(default=86_400, ge=0, le=30 * 86_400)
    # JWTs from POST /api/v1/tokens: lifetime (seconds, also the maximum); their issuer and
    # audience are core settings (every service verifies them).
    JWT_TTL: int = Field(default=900, ge=10, le=86_400)
    # Seconds between usage writes: access logs are counted in memory and written to
    # MongoDB (one bulk write of per-bucket $inc upserts) this often, and once at shutdown.
    USAGE_FLUSH_INTERVAL: float = Field(default=1.0, ge=0.05, le=60.0)
    # The generated OpenAPI document served at /openapi.json (default: gen/openapi/).
    OPENAPI_PATH: str | None = None
    # The admin dashboard's built files served at /admin (default: tools/admin-ui/dist).
    ADMIN_UI_DIR: str | None = None
    # Single sign-on (docs/gateway.md, "Single sign-on"): tokens of this OpenID Connect issuer
    # (exactly its `iss`, e.g. "https://idp.example.com/") are accepted, with this audience;
    # empty: off. Keys from OIDC_JWKS_URL, else the issuer's discovery document.
    OIDC_ISSUER: str = ""
    OIDC_AUDIENCE: str = ""
    OIDC_JWKS_URL: str = ""
    # Where the tenant and the role are in the claims (dotted paths), the tenant when the
    # claim is absent, and claim values -> roles (JSON; a value that is a role name maps to
    # itself). A token whose claims map to no tenant or no role is a 403.
    OIDC_TENANT_CLAIM: str = "tenant"
    OIDC_TENANT: str = ""
    OIDC_ROLE_CLAIM: str = "role"
    OIDC_ROLE_MAP: str = ""
    # The dashboard's sign-in through the provider (authorization code + PKCE, a public
    # client registered there with redirect URI <gateway>/admin): its client id and the
    # scopes it asks for (the role claim's values among them). Empty: API-key sign-in only.
    OIDC_DASHBOARD_CLIENT_ID: str = Field(default="", max_length=256)
    OIDC_DASHBOARD_SCOPES: str = Field(default="openid", max_length=1024)
    # The factor the gateway's rate-limit service multiplies ragline_core.rate_limits by
    # (benchmarks raise it); reported at GET /api/v1/configuration, it changes no limit.
    RATE_LIMIT_SCALE: int = Field(default=1, ge=1, le=1_000_000)
    # Encrypts the JWT signing keys at rest (AES-256-GCM, ragline_auth.signing_keys):
    # comma-separated 32-byte keys in base64 (`openssl rand -base64 32`). The first seals,
    # every one opens: to rotate, list the new key first and the old one second until every
    # replica has restarted (stored keys are re-sealed on start). Unset: stored plain
    # (development only; production mode refuses to start).
    AUTH_KEY_ENCRYPTION_KEY: SecretStr | None = None
    # Seconds between JWT signing-key rotations (default 30 days). The new key is in the JWKS
    # 6 minutes before it signs; the old one stays there until its last token has expired.
    AUTH_SIGNING_KEY_ROTATION_S: int = Field(default=30 * 86_400, ge=3600, le=365 * 86_400)

    @model_validator(mode="after")
    def _oidc(self) -> Self:
        if self.OIDC_ISSUER and not self.OIDC_AUDIENCE:
            raise ValueError("OIDC_AUDIENCE is required with OIDC_ISSUER (the token's aud)")
        parse_role_map(self.OIDC_ROLE_MAP)
        if self.OIDC_DASHBOARD_CLIENT_ID and not self.OIDC_ISSUER:
            raise ValueError("OIDC_DASHBOARD_CLIENT_ID needs OIDC_ISSUER (the provider)")
        if not self.OIDC_ISSUER.startswith(("https://", "http://")) and self.OIDC_ISSUER:
            raise ValueError("OIDC_ISSUER must be an http(s) URL (the provider's `iss`)")
        return self

    @field_validator("AUTH_KEY_ENCRYPTION_KEY")
    @classmethod
    def _encryption_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_encryption_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _production_ready(self) -> Self:
        """ENVIRONMENT=production refuses every development default, naming each."""
        if self.ENVIRONMENT != "production":
            return self
        problems = []
        pepper = self.API_KEY_PEPPER.get_secret_value()
        if pepper == DEV_PEPPER or len(pepper) < MIN_SECRET_CHARS:
            problems.append(
                "API_KEY_PEPPER is the development default or shorter than "
                f"{MIN_SECRET_CHARS} characters (openssl rand -base64 32)"
            )
        weak = [k for k in self.VALID_API_KEYS if k in DEV_KEYS or len(k) < MIN_SECRET_CHARS]
        if self.SEED_DEV_KEYS and weak:
            problems.append(
                "VALID_API_KEYS holds development keys (dev-key-1, dev-key-2) or keys shorter "
                f"than {MIN_SECRET_CHARS} characters, and SEED_DEV_KEYS=true would store them "
                "with every scope; set SEED_DEV_KEYS=false or strong keys"
            )
        if self.AUTH_KEY_ENCRYPTION_KEY is None:
            problems.append(
                "AUTH_KEY_ENCRYPTION_KEY is not set: the JWT signing key would be stored "
                "unencrypted (openssl rand -base64 32)"
            )
        if problems:
            raise ValueError("ENVIRONMENT=production refuses to start: " + "; ".join(problems))
        return self

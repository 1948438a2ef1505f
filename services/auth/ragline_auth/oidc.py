"""Single sign-on: access or ID tokens of an external OpenID Connect provider, verified here
and mapped to a tenant and a role (docs/gateway.md, "Single sign-on").

The gateway's jwt_authn knows only ragline's own issuer, so a provider's token falls through
to ext_authz like an API key; this module verifies it against the provider's JWKS (fetched
from OIDC_JWKS_URL, or the `jwks_uri` of the issuer's discovery document, cached for
JWKS_TTL_S and refetched for an unknown key id at most every JWKS_REFRESH_MIN_S), checks
issuer, audience and expiry, and reads the tenant and the role from configured claims. The
caller then gets the signed internal identity, with the role's scopes, like any key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from ragline_auth import roles
from ragline_auth import scopes as sc

log = logging.getLogger("ragline.auth.oidc")

JWKS_TTL_S = 300.0
# After a failed background fetch, the next try.
JWKS_RETRY_S = 5.0
JWKS_REFRESH_MIN_S = 10.0
# Roles from most to least: a token with several mapped values gets the highest.
_RANK = {r: i for i, r in enumerate(roles.ROLES)}
# The subject of an SSO caller's identity: "oidc:<role>:<sub>" (the role travels signed).
SUBJECT_PREFIX = "oidc:"


class OidcError(Exception):
    """A token that is not acceptable; `status` 401 (not valid) or 403 (valid, unmapped)."""

    def __init__(self, message: str, reason: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str = ""  # empty: the discovery document's jwks_uri
    tenant_claim: str = "tenant"  # dotted path into the claims, e.g. "ext.tenant"
    tenant: str = ""  # the tenant when the claim is absent (a provider for one tenant)
    role_claim: str = "role"  # a string, a list, or space-separated (e.g. "scp", "groups")
    role_map: dict[str, str] = field(default_factory=dict)  # claim value -> role
    algorithms: tuple[str, ...] = ("RS256", "ES256")


@dataclass(frozen=True)
class SsoIdentity:
    subject: str
    tenant: str
    role: str
    expires_at: float

    @property
    def key_id(self) -> str:
        return f"{SUBJECT_PREFIX}{self.role}:{self.subject}"


def parse_role_map(text: str) -> dict[str, str]:
    """OIDC_ROLE_MAP: a JSON object from claim value to role name."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"OIDC_ROLE_MAP is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("OIDC_ROLE_MAP must be a JSON object of claim value -> role")
    bad = {str(v) for v in raw.values()} - set(roles.ROLES)
    if bad:
        raise ValueError(
            f"OIDC_ROLE_MAP maps to unknown roles {sorted(bad)}; roles: {', '.join(roles.ROLES)}"
        )
    return {str(k): str(v) for k, v in raw.items()}


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def map_claims(config: OidcConfig, claims: dict[str, Any]) -> tuple[str, str]:
    """(tenant, role) of verified claims; OidcError 403 when either is not mapped."""
    tenant = _claim(claims, config.tenant_claim) if config.tenant_claim else None
    if tenant is None or tenant == "":
        tenant = config.tenant
    if not isinstance(tenant, str) or not sc.TENANT_RE.match(tenant):
        raise OidcError(
            f"the token's {config.tenant_claim!r} claim names no valid tenant",
            "TENANT_NOT_MAPPED",
            403,
        )
    raw = _claim(claims, config.role_claim)
    values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    found = []
    for value in values:
        value = str(value)
        role = config.role_map.get(value) or (value if value in roles.ROLES else None)
        if role is not None:
            found.append(role)
    if not found:
        raise OidcError(
            f"the token's {config.role_claim!r} claim maps to no role (OIDC_ROLE_MAP)",
            "ROLE_NOT_MAPPED",
            403,
        )
    return tenant, min(found, key=_RANK.__getitem__)


Fetch = Callable[[str], Awaitable[dict[str, Any]]]


async def _fetch_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        reply = await client.get(url)
        reply.raise_for_status()
        body = reply.json()
    if not isinstance(body, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return body


class OidcVerifier:
    def __init__(self, config: OidcConfig, fetch: Fetch = _fetch_json) -> None:
        self.config = config
        self.fetch = fetch
        self._keys: dict[str, Any] = {}
        self._fetched = -1e9
        self._lock = asyncio.Lock()

    def handles(self, token: str) -> bool:
        """Whether the token claims to come from the configured provider (unverified)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.config.issuer

    async def _jwks_url(self) -> str:
        if self.config.jwks_url:
            return self.config.jwks_url
        discovery = await self.fetch(
            self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        return str(discovery["jwks_uri"])

    async def refresh(self) -> None:
        """Fetches the provider's keys now."""
        jwks = await self.fetch(await self._jwks_url())
        self._keys = {
            str(k.get("kid", "")): jwt.PyJWK(k).key
            for k in jwks.get("keys", [])
            if k.get("use", "sig") == "sig"
        }
        self._fetched = time.monotonic()

    async def keep_fresh(self, stop: asyncio.Event) -> None:
        """Fetches the keys at start-up and again before they go stale, so a request waits
        for the provider only for a key id it has never seen: the gateway gives the whole
        check 2 s, and a provider's first JWKS answer can take longer (Hydra makes its keys
        on first use)."""
        while not stop.is_set():
            try:
                await self.refresh()
                wait = JWKS_TTL_S / 2
            except Exception as exc:  # the provider may be down for a while: retry
                log.warning("identity provider keys not fetched", extra={"error": repr(exc)})
                wait = JWKS_RETRY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def _key(self, kid: str) -> Any:
        now = time.monotonic()
        stale = now - self._fetched > JWKS_TTL_S
        unknown = kid not in self._keys and now - self._fetched > JWKS_REFRESH_MIN_S
        if stale or unknown:
            async with self._lock:
                try:
                    await self.refresh()
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    if not self._keys:
                        raise OidcError(
                            f"the identity provider's keys are unavailable ({type(exc).__name__})",
                            "IDP_UNAVAILABLE",
                            503,
                        ) from None
        key = self._keys.get(kid)
        if key is None:
            raise OidcError("the token's signing key is unknown", "INVALID_TOKEN")
        return key

    async def verify(self, token: str) -> SsoIdentity:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.config.algorithms:
                raise OidcError("the token's algorithm is not accepted", "INVALID_TOKEN")
            claims = jwt.decode(
                token,
                await self._key(str(header.get("kid", ""))),
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=5,
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError(
                "token expired; get a new one from your provider", "TOKEN_EXPIRED"
            ) from None
        except jwt.PyJWTError as exc:
            raise OidcError(f"invalid token: {exc}", "INVALID_TOKEN") from None
        tenant, role = map_claims(self.config, claims)
        return SsoIdentity(str(claims["sub"]), tenant, role, float(claims["exp"]))

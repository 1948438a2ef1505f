"""Verified identity at every hop: who a call acts for, proven by a signature.

A service never believes a plain header. A call carries one of:
- `x-ragline-identity`: an internal token, a JWT (HS256) signed with a key from
  INTERNAL_TOKEN_KEYS (a Secret every service mounts; the first key signs, every key
  verifies, so keys rotate without downtime), audience "ragline-services", valid for
  INTERNAL_TOKEN_TTL_S. The auth service mints one for every request it allows (the gateway
  forwards it, and its key cache reuses it within its lifetime), and a service calling
  another on a tenant's behalf (chat → retriever, ingest → embedder) mints one for that
  tenant.
- `authorization: Bearer <JWT>`: a user token the gateway verified and forwarded; the
  service checks it again against the auth service's JWKS (RS256, issuer and audience).
Anything else - no identity, `x-ragline-tenant` alone, a bad signature, another audience,
an expired token - is UNAUTHENTICATED. The verified caller lives in a context variable
for the call (`current()`).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from ragline_core.errors import UnauthenticatedError

IDENTITY_HEADER = "x-ragline-identity"
AUDIENCE = "ragline-services"
ISSUER = "ragline-internal"
# How long a fetched JWKS is trusted, and how often an unknown key id may refetch it.
JWKS_TTL_S = 300.0
JWKS_REFRESH_MIN_S = 10.0
MIN_KEY_CHARS = 32
# Tokens verified once and remembered until they expire: a caller sends the same token for
# many calls (the gateway's key cache reuses one, a user reuses a JWT), and a signature
# check costs tens to hundreds of microseconds per call.
VERIFIED_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str
    scopes: tuple[str, ...]
    tier: str = ""
    method: str = "internal"  # "api_key", "jwt", or "internal" (a service for a tenant)


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "ragline_caller", default=None
)


def current() -> Caller | None:
    return _current.get()


def set_current(caller: Caller | None) -> contextvars.Token[Caller | None]:
    return _current.set(caller)


def _kid(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class InternalTokens:
    """Mints and verifies internal tokens with the shared keys."""

    def __init__(self, keys: Sequence[str], ttl_s: float = 60.0) -> None:
        usable = [k for k in keys if k]
        if not usable:
            raise ValueError("INTERNAL_TOKEN_KEYS is empty")
        short = [i for i, k in enumerate(usable) if len(k) < MIN_KEY_CHARS]
        if short:
            raise ValueError(f"INTERNAL_TOKEN_KEYS: each key needs {MIN_KEY_CHARS}+ characters")
        self._keys = {_kid(k): k for k in usable}
        self._signing = usable[0]
        self.ttl_s = ttl_s

    def mint(self, caller: Caller, ttl_s: float | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": caller.key_id,
            "tenant": caller.tenant,
            "scopes": list(caller.scopes),
            "tier": caller.tier,
            "auth": caller.method,
            "iat": now,
            "exp": now + int(ttl_s if ttl_s is not None else self.ttl_s),
        }
        return jwt.encode(claims, self._signing, "HS256", headers={"kid": _kid(self._signing)})

    def verify(self, token: str) -> Caller:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Caller, float]:
        """The token's caller and its expiry (epoch seconds)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            key = self._keys.get(kid)
            if key is None:
                raise UnauthenticatedError(
                    "the internal identity token is signed with an unknown key",
                    reason="BAD_INTERNAL_TOKEN",
                )
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=5,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError(
                "the internal identity token has expired", reason="INTERNAL_TOKEN_EXPIRED"
            ) from None
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(
                f"the internal identity token is not valid: {exc}", reason="BAD_INTERNAL_TOKEN"
            ) from None
        return _caller(claims, str(claims.get("auth") or "internal")), float(claims["exp"])


def _caller(claims: dict[str, Any], method: str) -> Caller:
    tenant = claims.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise UnauthenticatedError("the token names no tenant", reason="BAD_INTERNAL_TOKEN")
    raw = claims.get("scopes") or []
    scopes = tuple(raw.split(",") if isinstance(raw, str) else (str(s) for s in raw))
    return Caller(tenant, str(claims.get("sub", "")), scopes, str(claims.get("tier", "")), method)


FetchJwks = Callable[[], Awaitable[dict[str, Any]]]


class UserTokens:
    """Verifies the user JWTs the gateway forwards, against the auth service's JWKS."""

    def __init__(self, fetch: FetchJwks, issuer: str, audience: str) -> None:
        self.fetch = fetch
        self.issuer = issuer
        self.audience = audience
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def _key(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched > JWKS_TTL_S
        unknown = kid not in self._keys
        if stale or (unknown and time.monotonic() - self._fetched > JWKS_REFRESH_MIN_S):
            async with self._lock:
                jwks = await self.fetch()
                self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks.get("keys", [])}
                self._fetched = time.monotonic()
        key = self._keys.get(kid)
        if key is None:
            raise UnauthenticatedError("the token's signing key is unknown", reason="INVALID_TOKEN")
        return key

    async def verify(self, token: str) -> Caller:
        return (await self.verify_until(token))[0]

    async def verify_until(self, token: str) -> tuple[Caller, float]:
        """The token's caller and its expiry (epoch seconds)."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid", ""))
            claims = jwt.decode(
                token,
                await self._key(kid),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=5,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the token has expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(
                f"the token is not valid: {exc}", reason="INVALID_TOKEN"
            ) from None
        return _caller(claims, "jwt"), float(claims["exp"])


class _Verified:
    """Callers of tokens already verified, until each token's expiry (bounded)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Caller, float]] = {}

    def get(self, token: str) -> Caller | None:
        found = self._entries.get(token)
        if found is None:
            return None
        if found[1] <= time.time():
            del self._entries[token]
            return None
        return found[0]

    def put(self, token: str, who: Caller, expires: float) -> None:
        if len(self._entries) >= VERIFIED_CACHE_MAX:
            self._entries.clear()  # simple bound: start over
        self._entries[token] = (who, expires)


class Authenticator:
    """Turns a call's metadata into its verified caller (or UNAUTHENTICATED)."""

    def __init__(self, internal: InternalTokens, users: UserTokens | None) -> None:
        self.internal = internal
        self.users = users
        self._verified = _Verified()
        # Tokens this process minted for its outgoing calls, reused for half their life.
        self._minted: dict[Caller, tuple[str, float]] = {}

    async def caller(self, metadata: Iterable[tuple[str, Any]] | None) -> Caller:
        token, bearer = "", ""
        for key, value in metadata or ():
            if key == IDENTITY_HEADER and isinstance(value, str):
                token = value
            elif key == "authorization" and isinstance(value, str):
                bearer = value
        if token:
            return self._remembered(token) or self._remember(
                token, self.internal.verify_until(token)
            )
        if bearer.lower().startswith("bearer ") and self.users is not None:
            jwt_token = bearer[7:].strip()
            return self._remembered(jwt_token) or self._remember(
                jwt_token, await self.users.verify_until(jwt_token)
            )
        raise UnauthenticatedError(
            "no verified identity: call through the gateway with an API key or token",
            reason="IDENTITY_REQUIRED",
        )

    def _remembered(self, token: str) -> Caller | None:
        return self._verified.get(token)

    def _remember(self, token: str, verified: tuple[Caller, float]) -> Caller:
        self._verified.put(token, *verified)
        return verified[0]

    def metadata_for(self, tenant: str, service: str) -> tuple[tuple[str, str], ...]:
        """Metadata for a call to another service on `tenant`'s behalf: the current caller
        when it is that tenant, else the calling service itself (background work)."""
        caller = current()
        if caller is None or caller.tenant != tenant:
            caller = Caller(tenant, f"service:{service}", ())
        now = time.monotonic()
        found = self._minted.get(caller)
        if found is None or now - found[1] > self.internal.ttl_s / 2:
            if len(self._minted) >= VERIFIED_CACHE_MAX:
                self._minted.clear()
            found = (self.internal.mint(caller), now)
            self._minted[caller] = found
        return ((IDENTITY_HEADER, found[0]),)


_installed: tuple[Authenticator, str] | None = None


def install(authenticator: Authenticator, service: str) -> None:
    """Makes the process's authenticator available to its outgoing calls."""
    global _installed
    _installed = (authenticator, service)


def outgoing(tenant: str) -> tuple[tuple[str, str], ...]:
    """Identity metadata for a call to another service on `tenant`'s behalf."""
    if _installed is None:
        raise RuntimeError("ragline_core.caller.install() was not called")
    authenticator, service = _installed
    return authenticator.metadata_for(tenant, service)


def mint(who: Caller) -> str:
    """An internal token for `who` (the auth service, for each request it allows)."""
    if _installed is None:
        raise RuntimeError("ragline_core.caller.install() was not called")
    return _installed[0].internal.mint(who)


async def of_headers(headers: Mapping[str, str]) -> Caller:
    """The verified caller of an HTTP request (a service's own HTTP endpoints)."""
    if _installed is None:
        raise RuntimeError("ragline_core.caller.install() was not called")
    return await _installed[0].caller([(k.lower(), v) for k, v in headers.items()])


def jwks_from_body(body: bytes) -> dict[str, Any]:
    value = json.loads(body)
    return value if isinstance(value, dict) else {}

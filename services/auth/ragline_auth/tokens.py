"""JWTs: RS256 tokens for API keys, signed with the current key of the signing-key ring
(ragline_auth.signing_keys: encrypted at rest, rotated on a schedule), verified against
every key a live token may carry, and the JWKS Envoy and the services verify with."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from ragline_auth.keys import ApiKey
from ragline_auth.signing_keys import KeyRing


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its caller."""

    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    tier: str


class TokenError(Exception):
    """A token that is expired (`expired`) or otherwise not acceptable."""

    def __init__(self, message: str, *, expired: bool) -> None:
        super().__init__(message)
        self.expired = expired


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Signer:
    """Signs and verifies the gateway's JWTs with a key ring (`use` swaps in a new one)."""

    def __init__(self, ring: KeyRing, issuer: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.use(ring)

    def use(self, ring: KeyRing) -> None:
        self.ring = ring
        self._public: dict[str, rsa.RSAPublicKey] = {
            k.kid: k.private.public_key() for k in ring.published
        }
        self._jwks = json.dumps(
            {"keys": [_jwk(kid, public) for kid, public in self._public.items()]}
        ).encode()

    @property
    def kid(self) -> str:
        return self.ring.signing.kid

    def issue(self, key: ApiKey, ttl_s: int) -> tuple[str, int]:
        return self.issue_for(key.key_id, key.tenant, key.scopes, key.tier, ttl_s)

    def issue_for(
        self, subject: str, tenant: str, scopes: tuple[str, ...], tier: str, ttl_s: int
    ) -> tuple[str, int]:
        """A token for a key (subject: its id) or a service account (its name)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(8),
            "tenant": tenant,
            "scopes": list(scopes),
            "scope": " ".join(scopes),
            "tier": tier,
            # Becomes the x-ragline-auth header (jwt_authn claim_to_headers).
            "auth_method": "jwt",
        }
        signing = self.ring.signing
        token = jwt.encode(claims, signing.private, algorithm="RS256", headers={"kid": signing.kid})
        return token, ttl_s

    def verify(self, token: str) -> Claims:
        try:
            public = self._public.get(str(jwt.get_unverified_header(token).get("kid", "")))
            if public is None:
                raise TokenError("invalid token", expired=False)
            claims = jwt.decode(
                token,
                public,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(
                "token expired; get a new one from POST /api/v1/tokens", expired=True
            ) from None
        except jwt.PyJWTError:
            raise TokenError("invalid token", expired=False) from None
        return Claims(
            key_id=str(claims["sub"]),
            tenant=str(claims.get("tenant", "")),
            scopes=tuple(str(s) for s in claims.get("scopes", [])),
            tier=str(claims.get("tier", "")),
        )

    def jwks(self) -> bytes:
        return self._jwks


def _jwk(kid: str, public: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": _b64(numbers.n),
        "e": _b64(numbers.e),
    }


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")

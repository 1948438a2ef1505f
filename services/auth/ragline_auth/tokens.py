"""JWTs: one RS256 signing key shared by every auth replica (kept in MongoDB, created by
whichever replica starts first), tokens for API keys, and the JWKS Envoy verifies with."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ragline_auth.keys import ApiKey

_KEY_ID = "current"


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
    """Signs and verifies the gateway's JWTs."""

    def __init__(self, private_pem: bytes, kid: str, issuer: str, audience: str) -> None:
        private = serialization.load_pem_private_key(private_pem, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        self._private: rsa.RSAPrivateKey = private
        self._public = private.public_key()
        self.kid = kid
        self.issuer = issuer
        self.audience = audience

    @classmethod
    async def load_or_create(
        cls, collection: AsyncCollection[dict[str, Any]], issuer: str, audience: str
    ) -> Signer:
        doc = await collection.find_one({"_id": _KEY_ID})
        if doc is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            candidate = {
                "_id": _KEY_ID,
                "kid": f"rl-{secrets.token_hex(6)}",
                "private_pem": pem.decode(),
                "created_at": datetime.now(UTC),
            }
            try:
                await collection.insert_one(candidate)
                doc = candidate
            except DuplicateKeyError:
                # Another replica won the race: use its key.
                doc = await collection.find_one({"_id": _KEY_ID})
        assert doc is not None
        return cls(str(doc["private_pem"]).encode(), str(doc["kid"]), issuer, audience)

    def issue(self, key: ApiKey, ttl_s: int) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": key.key_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(8),
            "tenant": key.tenant,
            "scopes": list(key.scopes),
            "scope": " ".join(key.scopes),
            "tier": key.tier,
            # Becomes the x-ragline-auth header (jwt_authn claim_to_headers).
            "auth_method": "jwt",
        }
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
        return token, ttl_s

    def verify(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._public,
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
        numbers = self._public.public_numbers()
        key = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }
        return json.dumps({"keys": [key]}).encode()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")

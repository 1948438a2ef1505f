"""The JWT signing keys: RS256 pairs in `auth_signing_keys`, the private half encrypted at
rest and rotated on a schedule.

- At rest: AES-256-GCM under AUTH_KEY_ENCRYPTION_KEY (a Secret; the key id is the
  associated data, so a sealed key cannot be swapped into another document). Several keys
  may be listed: the first seals, any of them opens, and documents sealed with an older
  one are re-sealed on start (that is how the encryption key itself rotates). Plain
  documents from before are encrypted in place on start. Without the setting keys stay
  plain: development only (production mode refuses to start, ragline_auth.settings).
- Rotation: every AUTH_SIGNING_KEY_ROTATION_S a new key is added. It is published in the
  JWKS PUBLISH_S before it signs (Envoy and the services cache the JWKS for five minutes),
  and the key it replaces stays published until the last token it signed has expired.
  Every replica derives the same ring from the database; a rotation inserts the next
  generation's `_id`, so two replicas cannot both add one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

log = logging.getLogger("ragline.auth.signing_keys")

# Longer than the JWKS caches (Envoy's jwt_authn and ragline_core.caller: 300 s), so every
# verifier knows a key before the first token signed with it arrives.
PUBLISH_S = 360.0
# Kept published this long after its last token's expiry (clock skew between replicas).
EXPIRY_SLACK_S = 60.0
SEALED = "A256GCM"
ENCRYPTION_SETTING = "AUTH_KEY_ENCRYPTION_KEY"


class SigningKeyError(Exception):
    """A signing key that cannot be used; the message names the setting to fix."""


def parse_encryption_keys(raw: str) -> list[bytes]:
    """AUTH_KEY_ENCRYPTION_KEY: comma-separated 32-byte keys in base64 (standard or URL-safe
    alphabet), e.g. from `openssl rand -base64 32`."""
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        normal = item.replace("-", "+").replace("_", "/")
        try:
            key = base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("each key must be base64 (openssl rand -base64 32)") from None
        if len(key) != 32:
            raise ValueError(f"each key must decode to 32 bytes, not {len(key)}")
        keys.append(key)
    if not keys:
        raise ValueError("no key given")
    return keys


def _ref(key: bytes) -> str:
    """Names an encryption key in the documents it sealed, without revealing it."""
    return hashlib.sha256(b"ragline-kek:" + key).hexdigest()[:16]


class KeyEncryption:
    """AES-256-GCM with AUTH_KEY_ENCRYPTION_KEY's keys: the first seals, any opens."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("no encryption key")
        self._keys = {_ref(k): k for k in keys}
        self.ref = _ref(keys[0])

    def seal(self, secret: bytes, kid: str) -> dict[str, str]:
        nonce = os.urandom(12)
        ciphertext = AESGCM(self._keys[self.ref]).encrypt(nonce, secret, kid.encode())
        return {
            "alg": SEALED,
            "kek": self.ref,
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
        }

    def open(self, sealed: dict[str, Any], kid: str) -> bytes:
        key = self._keys.get(str(sealed.get("kek", "")))
        if key is None or sealed.get("alg") != SEALED:
            raise SigningKeyError(
                f"signing key {kid} is encrypted with a key that is not in "
                f"{ENCRYPTION_SETTING} (list the old key after the new one while rotating)"
            )
        try:
            return AESGCM(key).decrypt(
                base64.b64decode(sealed["nonce"]),
                base64.b64decode(sealed["ciphertext"]),
                kid.encode(),
            )
        except (InvalidTag, KeyError, binascii.Error, ValueError):
            raise SigningKeyError(
                f"signing key {kid} does not decrypt with {ENCRYPTION_SETTING} "
                "(a damaged or altered document)"
            ) from None


@dataclass(frozen=True)
class SigningKey:
    kid: str
    generation: int
    private: rsa.RSAPrivateKey
    activates_at: datetime


@dataclass(frozen=True)
class KeyRing:
    """The key that signs now and every key a live token may carry (the JWKS)."""

    signing: SigningKey
    published: tuple[SigningKey, ...]


def ring_at(keys: Sequence[SigningKey], now: datetime, token_ttl_s: float) -> KeyRing:
    ordered = sorted(keys, key=lambda k: k.generation)
    active = [k for k in ordered if k.activates_at <= now]
    signing = active[-1] if active else ordered[0]
    keep = timedelta(seconds=token_ttl_s + EXPIRY_SLACK_S)
    published = []
    for key, successor in zip(ordered, [*ordered[1:], None], strict=True):
        # Retired once its successor signs; published until its last token has expired.
        retired = successor.activates_at if successor is not None else None
        if retired is None or retired > now or now < retired + keep:
            published.append(key)
    return KeyRing(signing, tuple(published))


def _pem(private: rsa.RSAPrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SigningKeyStore:
    """The signing keys in MongoDB: loads, migrates, creates and rotates them."""

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        encryption: KeyEncryption | None,
        rotation_s: float,
        token_ttl_s: float,
        publish_s: float = PUBLISH_S,
    ) -> None:
        self.collection = collection
        self.encryption = encryption
        self.rotation = timedelta(seconds=rotation_s)
        self.publish = timedelta(seconds=publish_s)
        self.token_ttl_s = token_ttl_s

    async def ring(self, now: datetime | None = None) -> KeyRing:
        """The ring at `now`: adds the first key, or the next one when it is due."""
        now = now or datetime.now(UTC)
        keys = await self.load()
        if not keys:
            # Nothing was ever published, so nobody can be caching an older JWKS.
            keys = await self._add(1, now, keys)
        newest = max(keys, key=lambda k: k.generation)
        if now >= newest.activates_at + self.rotation - self.publish:
            activates = max(newest.activates_at + self.rotation, now + self.publish)
            keys = await self._add(newest.generation + 1, activates, keys)
        ring = ring_at(keys, now, self.token_ttl_s)
        await self._drop_unpublished(keys, ring)
        return ring

    async def load(self) -> list[SigningKey]:
        """Every stored key, re-sealing any that is plain or sealed with an older key."""
        return [await self._key(doc) async for doc in self.collection.find({})]

    async def _key(self, doc: dict[str, Any]) -> SigningKey:
        kid = str(doc["kid"])
        sealed = doc.get("private")
        if isinstance(sealed, dict):
            if self.encryption is None:
                raise SigningKeyError(
                    f"the stored signing keys are encrypted: set {ENCRYPTION_SETTING}"
                )
            pem = self.encryption.open(sealed, kid)
            if sealed.get("kek") != self.encryption.ref:
                await self._seal(doc["_id"], pem, kid)
        else:
            pem = str(doc["private_pem"]).encode()
            if self.encryption is not None:
                await self._seal(doc["_id"], pem, kid)
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise SigningKeyError(f"signing key {kid} is not an RSA key")
        # Documents from before rotation ({"_id": "current"}) are generation 0.
        activates = doc.get("activates_at") or doc.get("created_at") or datetime.now(UTC)
        return SigningKey(kid, int(doc.get("generation", 0)), private, _aware(activates))

    async def _seal(self, doc_id: Any, pem: bytes, kid: str) -> None:
        assert self.encryption is not None
        await self.collection.update_one(
            {"_id": doc_id},
            {"$set": {"private": self.encryption.seal(pem, kid)}, "$unset": {"private_pem": ""}},
        )
        log.info("signing key sealed at rest", extra={"kid": kid, "kek": self.encryption.ref})

    async def _add(
        self, generation: int, activates_at: datetime, keys: list[SigningKey]
    ) -> list[SigningKey]:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = f"rl-{os.urandom(6).hex()}"
        doc: dict[str, Any] = {
            "_id": f"signing-{generation}",
            "kid": kid,
            "generation": generation,
            "created_at": datetime.now(UTC),
            "activates_at": activates_at,
        }
        if self.encryption is not None:
            doc["private"] = self.encryption.seal(_pem(private), kid)
        else:
            log.warning(f"signing key stored unencrypted: set {ENCRYPTION_SETTING}")
            doc["private_pem"] = _pem(private).decode()
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            # Another replica added this generation first: use its key.
            return await self.load()
        log.info("signing key added", extra={"kid": kid, "generation": generation})
        return [*keys, SigningKey(kid, generation, private, activates_at)]

    async def _drop_unpublished(self, keys: list[SigningKey], ring: KeyRing) -> None:
        """Keys no live token can carry are deleted: their private halves serve nobody."""
        live = {k.kid for k in ring.published}
        gone = [k.kid for k in keys if k.kid not in live]
        if gone:
            await self.collection.delete_many({"kid": {"$in": gone}})

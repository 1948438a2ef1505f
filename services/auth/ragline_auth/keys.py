"""API keys: generation, hashing, storage in MongoDB, a short per-process cache with
revocations pushed over Redis pub/sub, rotation and revocation.

Only an HMAC-SHA256 of a key (with a server-side pepper) is stored; the plaintext exists in
the create/rotate response and nowhere else. Keys are 256 random bits, so the HMAC is
both the lookup index and the proof: a lookup by digest followed by a constant-time
comparison of the digests.

A digest is looked up by `_id` in `<keys>_digests` ({_id: digest, key_id}), then the key by
its `_id`: FerretDB indexes nothing but `_id`, and a lookup by the `digest` field read the
whole table for every unknown key. Keys stored before that collection existed get their
entry at start-up (`setup`). Unknown keys are remembered briefly in a bounded cache.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from ragline_auth import scopes as sc
from ragline_auth.roles import OPERATOR
from ragline_core.errors import InvalidArgumentError, NotFoundError, UnavailableError

log = logging.getLogger("ragline.auth.keys")

INVALIDATION_CHANNEL = "ragline:auth:keys:invalidate"
ENVIRONMENTS = ("live", "test")
_LAST_USED_EVERY_S = 60.0
MAX_PAGE_SIZE = 200
# Unknown keys remembered at once (each a random guess costs nothing twice).
MAX_UNKNOWN_CACHED = 10_000


@dataclass(frozen=True)
class ApiKey:
    """A stored key: everything but the secret."""

    key_id: str
    digest: str
    prefix: str
    tenant: str
    scopes: tuple[str, ...]
    tier: str
    environment: str
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    replaced_by: str = ""
    # "users/{id}", "serviceAccounts/{id}" or OPERATOR (also every key stored before owners).
    owner: str = OPERATOR

    def seconds_left(self, now: datetime) -> float | None:
        """Seconds until the key expires (negative once it has); None if it never does."""
        return None if self.expires_at is None else (self.expires_at - now).total_seconds()

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewKey:
    """A key just created: the record and its plaintext (shown once)."""

    record: ApiKey
    plaintext: str


class KeyHasher:
    """HMAC-SHA256 with the server's pepper."""

    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    def digest(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode("utf-8"), hashlib.sha256).hexdigest()

    @staticmethod
    def same(a: str, b: str) -> bool:
        return hmac.compare_digest(a.encode(), b.encode())


def generate_key(environment: str) -> str:
    """`rl_live_` or `rl_test_` and 256 random bits, URL-safe."""
    return f"rl_{environment}_{secrets.token_urlsafe(32)}"


def _to_doc(key: ApiKey) -> dict[str, Any]:
    return {
        "_id": key.key_id,
        "digest": key.digest,
        "prefix": key.prefix,
        "tenant": key.tenant,
        "scopes": list(key.scopes),
        "tier": key.tier,
        "environment": key.environment,
        "name": key.name,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
        "replaced_by": key.replaced_by,
        "owner": key.owner,
    }


def _from_doc(doc: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=doc["_id"],
        digest=doc["digest"],
        prefix=doc.get("prefix", ""),
        tenant=doc["tenant"],
        scopes=tuple(doc.get("scopes", ())),
        tier=doc.get("tier", sc.DEFAULT_TIER),
        environment=doc.get("environment", "live"),
        name=doc.get("name", ""),
        created_at=doc["created_at"],
        expires_at=doc.get("expires_at"),
        revoked_at=doc.get("revoked_at"),
        last_used_at=doc.get("last_used_at"),
        replaced_by=doc.get("replaced_by", ""),
        owner=doc.get("owner") or OPERATOR,
    )


class KeyCache:
    """Lookups by digest, cached for `ttl` seconds; `drop` forgets one key at once. Unknown
    digests live apart, least recently seen dropped first, so a flood of random keys
    never pushes the real ones out."""

    def __init__(self, ttl: float, max_unknown: int = MAX_UNKNOWN_CACHED) -> None:
        self.ttl = ttl
        self.max_unknown = max_unknown
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def get(self, digest: str) -> tuple[bool, ApiKey | None]:
        now = time.monotonic()
        expires = self._unknown.get(digest)
        if expires is not None and expires >= now:
            return True, None
        entry = self._entries.get(digest)
        if entry is None or entry[0] < now:
            return False, None
        return True, entry[1]

    def put(self, digest: str, key: ApiKey | None) -> None:
        if self.ttl <= 0:
            return
        if key is None:
            self._unknown[digest] = time.monotonic() + self.ttl
            self._unknown.move_to_end(digest)
            while len(self._unknown) > self.max_unknown:
                self._unknown.popitem(last=False)
            return
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl, key)

    @property
    def unknown_count(self) -> int:
        return len(self._unknown)

    def drop(self, key_id: str) -> None:
        for digest, (_, key) in list(self._entries.items()):
            if key is not None and key.key_id == key_id:
                self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()


class KeyService:
    """Key management and lookup over one MongoDB collection."""

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        redis: aioredis.Redis,
        hasher: KeyHasher,
        cache_ttl: float,
        rotation_grace_s: int,
    ) -> None:
        self.collection = collection
        # digest -> key_id, keyed by _id (the only index FerretDB has).
        self.digests: AsyncCollection[dict[str, Any]] = collection.database[
            f"{collection.name}_digests"
        ]
        self.redis = redis
        self.hasher = hasher
        self.cache = KeyCache(cache_ttl)
        self.rotation_grace_s = rotation_grace_s
        self._last_used_written: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def setup(self) -> None:
        await self.collection.create_index([("digest", ASCENDING)], unique=True)
        await self.collection.create_index([("tenant", ASCENDING), ("created_at", DESCENDING)])
        await self._index_stored_digests()

    async def _index_stored_digests(self) -> None:
        """Gives every stored key its `_id`-keyed digest entry (keys created before the
        entries existed, or by an older replica during an upgrade): one read of the keys."""
        writes = [
            UpdateOne({"_id": d["digest"]}, {"$setOnInsert": {"key_id": d["_id"]}}, upsert=True)
            async for d in self.collection.find({}, {"digest": 1})
            if d.get("digest")
        ]
        if writes:
            await self.digests.bulk_write(writes, ordered=False)

    async def _index_digest(self, key: ApiKey) -> None:
        await self.digests.update_one(
            {"_id": key.digest}, {"$setOnInsert": {"key_id": key.key_id}}, upsert=True
        )

    # -- lookup ------------------------------------------------------------------------
    async def lookup(self, plaintext: str) -> ApiKey | None:
        """The key record for a presented key, or None if unknown (cached briefly)."""
        digest = self.hasher.digest(plaintext)
        hit, key = self.cache.get(digest)
        if not hit:
            try:
                key = await self._find(digest)
            except PyMongoError as exc:
                raise UnavailableError(
                    "key store unavailable", reason="AUTH_STORE_UNAVAILABLE"
                ) from exc
            self.cache.put(digest, key)
        if key is None or not self.hasher.same(key.digest, digest):
            return None
        return key

    def cached(self, plaintext: str) -> ApiKey | None:
        """The key if this process has it cached as a known key; never reads the store."""
        digest = self.hasher.digest(plaintext)
        _, key = self.cache.get(digest)
        return key if key is not None and self.hasher.same(key.digest, digest) else None

    async def _find(self, digest: str) -> ApiKey | None:
        """Two reads by `_id`: the digest's entry, then its key."""
        entry = await self.digests.find_one({"_id": digest})
        if entry is None:
            return None
        doc = await self.collection.find_one({"_id": entry["key_id"]})
        return _from_doc(doc) if doc is not None else None

    def touch(self, key: ApiKey) -> None:
        """Records the last use, at most once a minute per key per process."""
        now = time.monotonic()
        if now - self._last_used_written.get(key.key_id, -1e9) < _LAST_USED_EVERY_S:
            return
        self._last_used_written[key.key_id] = now
        task = asyncio.get_running_loop().create_task(self._write_last_used(key.key_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_last_used(self, key_id: str) -> None:
        try:
            await self.collection.update_one(
                {"_id": key_id}, {"$set": {"last_used_at": datetime.now(UTC)}}
            )
        except PyMongoError:
            log.warning("could not record last use", extra={"key_id": key_id})

    # -- management --------------------------------------------------------------------
    async def create(
        self,
        tenant: str,
        scopes: Sequence[str],
        *,
        name: str = "",
        tier: str = "",
        environment: str = "",
        ttl_seconds: int = 0,
        owner: str = OPERATOR,
    ) -> NewKey:
        if not sc.TENANT_RE.match(tenant):
            raise InvalidArgumentError(
                "tenant must be 1-64 letters, digits, '_', '.' or '-'",
                reason="INVALID_TENANT",
                field="tenant",
            )
        if not scopes:
            raise InvalidArgumentError(
                f"scopes is required; choose from {', '.join(sc.SCOPES)}",
                reason="INVALID_SCOPE",
                field="scopes",
            )
        try:
            parsed = sc.parse_scope_list(scopes)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"{exc}; choose from {', '.join(sc.SCOPES)}", reason="INVALID_SCOPE", field="scopes"
            ) from None
        tier = tier or sc.DEFAULT_TIER
        if tier not in sc.TIERS:
            raise InvalidArgumentError(
                f"unknown tier {tier!r}; choose from {', '.join(sc.TIERS)}",
                reason="INVALID_TIER",
                field="tier",
            )
        environment = environment or "live"
        if ttl_seconds < 0 or ttl_seconds > 10 * 365 * 86_400:
            raise InvalidArgumentError(
                "ttl_seconds must be between 0 (no expiry) and ten years",
                field="ttl_seconds",
            )
        if len(name) > 200:
            raise InvalidArgumentError("name is longer than 200 characters", field="name")
        now = datetime.now(UTC)
        plaintext = generate_key(environment)
        record = ApiKey(
            key_id=f"key_{secrets.token_hex(8)}",
            digest=self.hasher.digest(plaintext),
            prefix=plaintext[: len(f"rl_{environment}_") + 4],
            tenant=tenant,
            scopes=parsed,
            tier=tier,
            environment=environment,
            name=name,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
            owner=owner,
        )
        await self.collection.insert_one(_to_doc(record))
        await self._index_digest(record)
        return NewKey(record, plaintext)

    async def seed(
        self, plaintext: str, key_id: str, tenant: str, scopes: Sequence[str], tier: str
    ) -> None:
        """Stores a development key unless it is there already (revocations stick)."""
        record = ApiKey(
            key_id=key_id,
            digest=self.hasher.digest(plaintext),
            prefix=plaintext[:4],
            tenant=tenant,
            scopes=tuple(scopes),
            tier=tier,
            environment="test",
            name="development key from VALID_API_KEYS",
            created_at=datetime.now(UTC),
        )
        doc = _to_doc(record)
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.update_one({"_id": key_id}, {"$setOnInsert": doc}, upsert=True)
        await self._index_digest(record)

    async def get(self, key_id: str) -> ApiKey:
        doc = await self.collection.find_one({"_id": key_id})
        if doc is None:
            raise NotFoundError(f"no API key {key_id!r}", reason="KEY_NOT_FOUND")
        return _from_doc(doc)

    async def list(
        self, tenant: str, page_size: int, page_token: str, owner: str = ""
    ) -> tuple[list[ApiKey], str]:
        size = page_size or 50
        if size < 0 or size > MAX_PAGE_SIZE:
            raise InvalidArgumentError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
            )
        offset = _decode_token(page_token)
        query: dict[str, Any] = {"tenant": tenant} if tenant else {}
        if owner:
            query["owner"] = owner
        cursor = (
            self.collection.find(query)
            .sort([("created_at", DESCENDING), ("_id", ASCENDING)])
            .skip(offset)
            .limit(size + 1)
        )
        docs = [doc async for doc in cursor]
        more = len(docs) > size
        keys = [_from_doc(d) for d in docs[:size]]
        return keys, _encode_token(offset + size) if more else ""

    async def rotate(self, key_id: str, grace_s: int) -> tuple[NewKey, ApiKey]:
        old = await self.get(key_id)
        now = datetime.now(UTC)
        if old.state(now) != "active":
            raise NotFoundError(f"no active API key {key_id!r}", reason="KEY_NOT_FOUND")
        if grace_s < 0 or grace_s > 30 * 86_400:
            raise InvalidArgumentError(
                "grace_period_seconds must be between 0 and 2592000 (30 days)",
                field="grace_period_seconds",
            )
        grace = grace_s or self.rotation_grace_s
        remaining = old.seconds_left(now) or 0
        new = await self.create(
            old.tenant,
            old.scopes,
            name=old.name,
            tier=old.tier,
            environment=old.environment,
            ttl_seconds=int(remaining) if remaining > 0 else 0,
            owner=old.owner,
        )
        expires = now + timedelta(seconds=grace)
        if old.expires_at is not None and old.expires_at < expires:
            expires = old.expires_at
        await self.collection.update_one(
            {"_id": key_id},
            {"$set": {"expires_at": expires, "replaced_by": new.record.key_id}},
        )
        await self.invalidate(key_id)
        return new, replace(old, expires_at=expires, replaced_by=new.record.key_id)

    async def revoke(self, key_id: str) -> ApiKey:
        old = await self.get(key_id)
        revoked = old.revoked_at or datetime.now(UTC)
        await self.collection.update_one({"_id": key_id}, {"$set": {"revoked_at": revoked}})
        await self.invalidate(key_id)
        return replace(old, revoked_at=revoked)

    async def of_owner(self, owner: str) -> builtins.list[ApiKey]:
        """Every key of one owner that is not revoked (an admin action's read: no index)."""
        docs = self.collection.find({"owner": owner, "revoked_at": None})
        return [_from_doc(d) async for d in docs]

    async def narrow(self, key: ApiKey, scopes: tuple[str, ...]) -> None:
        """Takes scopes away from a key (its owner's role no longer holds them)."""
        await self.collection.update_one({"_id": key.key_id}, {"$set": {"scopes": list(scopes)}})
        await self.invalidate(key.key_id)

    # -- invalidation ------------------------------------------------------------------
    async def invalidate(self, key_id: str) -> None:
        """Drops the key from this process's cache and tells every other process."""
        self.cache.drop(key_id)
        # The shared client gives up after 0.5 s (a busy Redis, a connection dropped by a
        # restart): a revocation is worth a few more tries.
        for delay in (0.1, 0.2, 0.4, None):
            try:
                await self.redis.publish(INVALIDATION_CHANNEL, key_id)
                return
            except RedisError:
                if delay is not None:
                    await asyncio.sleep(delay)
        log.warning("revocation not broadcast (Redis down); caches expire within TTL")

    async def listen(
        self, stop: asyncio.Event, redis: aioredis.Redis, subscribed: asyncio.Event
    ) -> None:
        """Applies invalidations from other processes until `stop` (reconnects); sets
        `subscribed` once Redis has confirmed the subscription."""
        while not stop.is_set():
            pubsub = redis.pubsub()
            try:
                await pubsub.subscribe(INVALIDATION_CHANNEL)
                # subscribe() only sends the command: wait until Redis confirms it, then
                # forget anything that may have been published before.
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "subscribe":
                        break
                self.cache.clear()
                subscribed.set()
                while not stop.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self.cache.drop(data.decode() if isinstance(data, bytes) else str(data))
            except Exception:  # whatever broke, a replica must keep listening
                log.warning("revocation listener reconnecting", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


def encode_page_token(offset: int) -> str:
    """An opaque page token for an offset (the lists of this service share the format)."""
    return _encode_token(offset)


def decode_page_token(token: str) -> int:
    return _decode_token(token)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError(raw)
        offset = int(raw[2:])
        if offset < 0:
            raise ValueError(raw)
        return offset
    except ValueError:
        raise InvalidArgumentError(
            "page_token is not a token from a previous page",
            reason="INVALID_PAGE_TOKEN",
            field="page_token",
        ) from None

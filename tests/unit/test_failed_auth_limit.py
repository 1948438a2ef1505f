"""Failed API-key attempts per client address: counted, capped, forgotten in time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ragline_auth.authz import Authorizer, Denial, Identity, client_address, denied
from ragline_auth.failures import FailedAttempts
from ragline_auth.keys import ApiKey, KeyCache

KNOWN = ApiKey(
    key_id="k1",
    digest="d",
    prefix="rl_live_ab",
    tenant="acme",
    scopes=("search",),
    tier="free",
    environment="live",
    name="",
    created_at=datetime.now(UTC),
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Keys:
    """Knows one key ("good"); counts reads of the store; "cached" is in memory."""

    def __init__(self) -> None:
        self.reads = 0
        self.cached_tokens: set[str] = set()

    async def lookup(self, token: str) -> ApiKey | None:
        self.reads += 1
        if token == "revoked":
            return replace(KNOWN, revoked_at=datetime.now(UTC))
        return KNOWN if token in ("good", "cached") else None

    def cached(self, token: str) -> ApiKey | None:
        return KNOWN if token in self.cached_tokens else None

    def touch(self, key: ApiKey) -> None:
        return None


def _authorizer(limit: int = 3, window_s: float = 60.0) -> tuple[Authorizer, _Keys, _Clock]:
    keys, clock = _Keys(), _Clock()
    failures = FailedAttempts(limit, window_s, clock=clock)
    return Authorizer(keys, None, failures=failures), keys, clock  # type: ignore[arg-type]


async def _decide(authorizer: Authorizer, token: str, source: str) -> Identity | Denial:
    return await authorizer.decide({"authorization": f"Bearer {token}"}, "search", source)


async def test_past_the_limit_an_address_gets_429_without_a_store_read():
    authorizer, keys, clock = _authorizer(limit=3)
    for _ in range(3):
        decision = await _decide(authorizer, "guess", "10.0.0.1")
        assert isinstance(decision, Denial) and decision.http_status == 401
    assert keys.reads == 3
    decision = await _decide(authorizer, "guess", "10.0.0.1")
    assert isinstance(decision, Denial) and decision.http_status == 429
    assert decision.reason == "TOO_MANY_FAILED_ATTEMPTS" and decision.retry_after_s == 60
    assert keys.reads == 3  # refused without reading the store
    # A real key the process has not cached is refused too; a cached one still passes.
    assert isinstance(await _decide(authorizer, "good", "10.0.0.1"), Denial)
    keys.cached_tokens.add("cached")
    assert isinstance(await _decide(authorizer, "cached", "10.0.0.1"), Identity)
    # Other addresses are not affected.
    assert isinstance(await _decide(authorizer, "good", "10.0.0.2"), Identity)
    # The window ends: the address may try again.
    clock.now += 45
    wait = await _decide(authorizer, "guess", "10.0.0.1")
    assert isinstance(wait, Denial) and wait.retry_after_s == 15
    clock.now += 15
    again = await _decide(authorizer, "guess", "10.0.0.1")
    assert isinstance(again, Denial) and again.http_status == 401


async def test_real_keys_that_fail_do_not_count():
    authorizer, _, _ = _authorizer(limit=1)
    too_long = await _decide(authorizer, "x" * 300, "10.0.0.1")  # refused without a read
    assert isinstance(too_long, Denial) and too_long.http_status == 401
    for _ in range(3):
        revoked = await _decide(authorizer, "revoked", "10.0.0.1")
        assert isinstance(revoked, Denial) and revoked.reason == "KEY_REVOKED"
    assert isinstance(await _decide(authorizer, "good", "10.0.0.1"), Identity)
    assert isinstance(await _decide(authorizer, "guess", "10.0.0.1"), Denial)
    blocked = await _decide(authorizer, "guess", "10.0.0.1")
    assert isinstance(blocked, Denial) and blocked.http_status == 429


def test_the_429_carries_retry_after():
    authorizer_denial = Denial(429, 8, "TOO_MANY_FAILED_ATTEMPTS", "slow down", retry_after_s=7)
    reply = denied(authorizer_denial, grpc_request=False)
    headers = {h.header.key: h.header.value for h in reply.denied_response.headers}
    assert reply.denied_response.status.code == 429 and headers["retry-after"] == "7"


def test_the_client_address_is_the_entry_the_gateway_appended():
    assert client_address({"x-forwarded-for": "6.6.6.6, 10.1.2.3"}) == "10.1.2.3"
    assert client_address({"x-forwarded-for": "10.1.2.3"}) == "10.1.2.3"
    assert client_address({}) == ""


def test_addresses_and_unknown_keys_are_bounded():
    failures = FailedAttempts(1, 60.0, max_addresses=100)
    for i in range(1000):
        failures.record(f"10.0.{i // 250}.{i % 250}")
    assert len(failures._windows) == 100
    cache = KeyCache(ttl=60.0, max_unknown=50)
    cache.put("real", KNOWN)
    for i in range(1000):
        cache.put(f"guess-{i}", None)
    assert cache.unknown_count == 50
    assert cache.get("guess-999") == (True, None) and cache.get("guess-0") == (False, None)
    assert cache.get("real") == (True, KNOWN)  # a flood of guesses never evicts a real key

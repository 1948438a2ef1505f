"""Per-tenant daily spend caps on paid model calls (embeddings, chat).

Spend is counted in Redis per tenant and UTC day, in micro-dollars, from the same cost
estimates the metrics and usage analytics use. A paid call is refused with 429
SPEND_CAP_EXCEEDED once the tenant's spend for the day has reached its cap; a call in
flight when the cap is crossed finishes (its cost is known only afterwards). If Redis is
down the cap cannot be read and calls are allowed (logged): a cache outage should not take
paid models down, and provider-side budgets remain the hard stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ragline_core.errors import ResourceExhaustedError

log = logging.getLogger("ragline.spend")
_MICRO = 1_000_000
_KEEP_S = 2 * 86_400


class SpendGuard:
    def __init__(
        self, redis: aioredis.Redis, default_cap_usd: float, caps_usd: Mapping[str, float]
    ) -> None:
        self.redis = redis
        self.default_cap_usd = default_cap_usd
        self.caps_usd = dict(caps_usd)

    def cap_for(self, tenant: str) -> float:
        """The tenant's daily cap in USD; 0 means no cap."""
        return self.caps_usd.get(tenant, self.default_cap_usd)

    @staticmethod
    def _key(tenant: str) -> str:
        return f"ragline:spend:v1:{tenant}:{time.strftime('%Y%m%d', time.gmtime())}"

    async def check(self, tenant: str) -> None:
        """Raises 429 when the tenant has spent its cap today."""
        cap = self.cap_for(tenant)
        if cap <= 0:
            return
        try:
            spent = int(await self.redis.get(self._key(tenant)) or 0) / _MICRO
        except (RedisError, OSError, ValueError):
            log.warning("spend cap unchecked: redis unavailable", extra={"tenant": tenant})
            return
        if spent >= cap:
            raise ResourceExhaustedError(
                f"the daily spend cap of ${cap:g} for paid models is reached; it resets at "
                "00:00 UTC",
                reason="SPEND_CAP_EXCEEDED",
                metadata={"cap_usd": f"{cap:g}", "spent_usd": f"{spent:.6f}"},
            )

    async def spent_today(self, tenant: str) -> float | None:
        """What the tenant has spent on paid models today (UTC), USD; None if unreadable."""
        try:
            return int(await self.redis.get(self._key(tenant)) or 0) / _MICRO
        except (RedisError, OSError, ValueError):
            return None

    async def record(self, tenant: str, cost_usd: float) -> None:
        if cost_usd <= 0:
            return
        key = self._key(tenant)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, max(1, round(cost_usd * _MICRO)))
                pipe.expire(key, _KEEP_S)
                await pipe.execute()
        except (RedisError, OSError):
            log.warning("spend not recorded: redis unavailable", extra={"tenant": tenant})

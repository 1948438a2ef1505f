"""What one call consumed, reported to the gateway for usage analytics.

A service sends the numbers as response headers (gRPC initial metadata); Envoy's access
log carries them to the auth service, which adds them to the caller's tenant's hourly
usage. Clients see them too, as `x-ragline-usage-*` response headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragline_core.rpc_types import Context

TOKENS_IN = "x-ragline-usage-tokens-in"
TOKENS_OUT = "x-ragline-usage-tokens-out"
COST_USD = "x-ragline-usage-cost-usd"
CACHE_LOOKUPS = "x-ragline-usage-cache-lookups"
CACHE_HITS = "x-ragline-usage-cache-hits"


@dataclass(frozen=True)
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cache_lookups: int = 0
    cache_hits: int = 0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (
            (TOKENS_IN, str(self.tokens_in)),
            (TOKENS_OUT, str(self.tokens_out)),
            (COST_USD, f"{self.cost_usd:.8f}"),
            (CACHE_LOOKUPS, str(self.cache_lookups)),
            (CACHE_HITS, str(self.cache_hits)),
        )


async def report_usage(context: Context, usage: Usage) -> None:
    """Sends `usage` as initial metadata (call once, before the response)."""
    await context.send_initial_metadata(usage.metadata())

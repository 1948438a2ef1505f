"""The gateway's rate-limit tiers: requests per minute per key, by the key's tier and the
route's endpoint group (its scope). The gateway's rate-limit service is configured from
this table (tools/ragline_stack/gateway.py), and the auth service reports it
(GET /api/v1/configuration), so both say the same."""

from __future__ import annotations

ENDPOINT_GROUPS = (
    "embeddings",
    "search",
    "chat",
    "ingest",
    "analytics",
    "admin",
    "tokens",
    "default",
)
_FREE = (60, 60, 20, 10, 30, 30, 10, 60)
_FACTORS = (("free", 1), ("standard", 10), ("enterprise", 100))
TIERS = tuple(tier for tier, _ in _FACTORS)
RATE_LIMIT_TIERS: dict[str, dict[str, int]] = {
    tier: {group: n * factor for group, n in zip(ENDPOINT_GROUPS, _FREE, strict=True)}
    for tier, factor in _FACTORS
}


def effective(scale: int = 1) -> dict[str, dict[str, int]]:
    """The table with every limit times `scale` (RATE_LIMIT_SCALE: benchmarks raise it)."""
    return {t: {g: n * scale for g, n in groups.items()} for t, groups in RATE_LIMIT_TIERS.items()}

"""The scopes a key can hold and the rate-limit tiers it can be on."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragline_core import rate_limits
from ragline_core.errors import quoted

EMBEDDINGS = "embeddings"
SEARCH = "search"
CHAT = "chat"
INGEST = "ingest"
ANALYTICS = "analytics"
ADMIN = "admin"
SCOPES = (EMBEDDINGS, SEARCH, CHAT, INGEST, ANALYTICS, ADMIN)

# Scope markers a route can carry instead of a scope.
AUTHENTICATED = "authenticated"  # any valid credential
API_KEY_ONLY = "api_key_only"  # any valid API key, never a JWT (token exchange)

TIERS = rate_limits.TIERS
DEFAULT_TIER = "standard"

TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SCOPE_ITEMS = 4 * len(SCOPES)


def parse_scopes(text: str) -> tuple[str, ...]:
    """Comma- or space-separated scopes, validated, in canonical order."""
    given = {s for s in re.split(r"[,\s]+", text) if s}
    unknown = given - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    return tuple(s for s in SCOPES if s in given)


def parse_scope_list(scopes: Sequence[str]) -> tuple[str, ...]:
    """Scopes given as a list (an API request): each item one known scope, exactly, so
    "search admin" is refused rather than read as two scopes."""
    if len(scopes) > MAX_SCOPE_ITEMS:
        raise ValueError(f"scopes has {len(scopes)} items; the limit is {MAX_SCOPE_ITEMS}")
    for i, scope in enumerate(scopes):
        if scope not in SCOPES:
            hint = "; give each scope as its own item" if re.search(r"[,\s]", scope) else ""
            raise ValueError(f"scopes[{i}] {quoted(scope)} is not a scope{hint}")
    return tuple(s for s in SCOPES if s in scopes)

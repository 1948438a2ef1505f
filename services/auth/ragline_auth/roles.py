"""Roles: named sets of scopes a user or service account holds in its tenant, and who may
manage whom. The table is documented in docs/gateway.md ("Users, roles and the audit
log"); change both together."""

from __future__ import annotations

from ragline_auth import scopes as sc

OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
VIEWER = "viewer"
ROLES = (OWNER, ADMIN, MEMBER, VIEWER)

ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    OWNER: sc.SCOPES,
    ADMIN: sc.SCOPES,
    MEMBER: (sc.EMBEDDINGS, sc.SEARCH, sc.CHAT, sc.INGEST, sc.ANALYTICS),
    VIEWER: (sc.SEARCH, sc.CHAT, sc.ANALYTICS),
}

# The platform operator: owner of the development keys (VALID_API_KEYS) and of every key
# stored before keys had owners. It acts for every tenant, as the `admin` scope did before
# tenants had users.
OPERATOR = "serviceAccounts/operator"


def scopes_of(role: str) -> tuple[str, ...]:
    return ROLE_SCOPES.get(role, ())


def beyond(role: str, wanted: tuple[str, ...] | list[str]) -> list[str]:
    """The scopes in `wanted` that `role` does not hold, in canonical order."""
    held = set(scopes_of(role))
    return [s for s in sc.SCOPES if s in wanted and s not in held]


def may_manage(actor_role: str, target_role: str) -> bool:
    """An owner manages everyone; an admin everyone but owners (nor makes anyone one)."""
    if actor_role == OWNER:
        return True
    return actor_role == ADMIN and target_role != OWNER

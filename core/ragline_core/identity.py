"""Who is calling: the tenant of the verified caller (ragline_core.caller).

The gateway also sets plain `x-ragline-*` headers (usage analytics reads them from its
access log), but no service believes them: only a signed identity counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from ragline_core import caller
from ragline_core.errors import UnauthenticatedError
from ragline_core.rpc_types import Context

TENANT_HEADER = "x-ragline-tenant"
KEY_ID_HEADER = "x-ragline-key-id"


def current_caller(_context: Context | None = None) -> caller.Caller:
    """The verified caller of this call (set by the server interceptor)."""
    found = caller.current()
    if found is None:
        raise UnauthenticatedError("no verified identity", reason="IDENTITY_REQUIRED")
    return found


def tenant_of(context: Context | None = None) -> str:
    """The verified caller's tenant."""
    return current_caller(context).tenant


async def tenant_of_headers(headers: Mapping[str, str]) -> str:
    """The verified caller's tenant of an HTTP request (the chat service's HTTP edge)."""
    return (await caller.of_headers(headers)).tenant

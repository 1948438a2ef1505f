"""Who is calling: the tenant and key id that the gateway sets after authentication.

Envoy strips these headers from client requests and sets them itself, so services trust
only them. Direct calls without the gateway (tests, internal tools) act as the
"default" tenant.
"""

from __future__ import annotations

import re

from ragline_core.rpc_types import Context

TENANT_HEADER = "x-ragline-tenant"
KEY_ID_HEADER = "x-ragline-key-id"
DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def tenant_of(context: Context) -> str:
    """The caller's tenant from trusted metadata, or the default tenant."""
    for key, value in context.invocation_metadata() or ():
        if key == TENANT_HEADER and isinstance(value, str) and _TENANT_RE.match(value):
            return value
    return DEFAULT_TENANT


def tenant_of_header(value: str | None) -> str:
    """The tenant from a trusted HTTP header value (services' own HTTP endpoints)."""
    if value and _TENANT_RE.match(value):
        return value
    return DEFAULT_TENANT

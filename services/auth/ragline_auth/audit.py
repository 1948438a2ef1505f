"""The audit log: one document per administrative action (who, what, to what, when, from
where) in `audit_events`, listed newest first.

An event's `_id` starts with its time in milliseconds (zero-padded), so `_id` order is time
order: a page is one `_id`-ordered read that resumes after the last `_id` it returned
(FerretDB indexes nothing but `_id`). Events are never updated or deleted by the service.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from ragline_auth.keys import MAX_PAGE_SIZE
from ragline_core.errors import InvalidArgumentError, UnavailableError, quoted

log = logging.getLogger("ragline.auth.audit")

# The actions written (docs/gateway.md lists them; an open set: new ones may appear).
ACTIONS = (
    "api_key.create",
    "api_key.rotate",
    "api_key.revoke",
    "user.create",
    "user.update",
    "user.delete",
    "service_account.create",
    "service_account.delete",
    "service_account.rotate_secret",
    "oauth2.token.issue",
)


@dataclass(frozen=True)
class Origin:
    """Where a request came from, as the gateway saw it."""

    source_ip: str = ""
    user_agent: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class AuditEvent:
    id: str
    tenant: str
    actor: str
    actor_credential: str
    action: str
    target: str
    created_at: datetime
    origin: Origin = Origin()
    details: dict[str, str] = field(default_factory=dict)


def _from_doc(doc: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        id=doc["_id"],
        tenant=doc.get("tenant", ""),
        actor=doc.get("actor", ""),
        actor_credential=doc.get("actor_credential", ""),
        action=doc.get("action", ""),
        target=doc.get("target", ""),
        created_at=doc["created_at"],
        origin=Origin(
            doc.get("source_ip", ""), doc.get("user_agent", ""), doc.get("request_id", "")
        ),
        details=dict(doc.get("details") or {}),
    )


# AIP-160 subset: `field op value` terms joined by AND; values bare or double-quoted.
_TERM = re.compile(r'^\s*([a-z_]+)\s*(>=|<=|!=|=|>|<)\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*$')


def parse_filter(text: str, allowed: dict[str, tuple[str, ...]]) -> list[tuple[str, str, str]]:
    """[(field, op, value)] of a filter; a 400 naming the problem otherwise. `allowed` maps
    each field to the operators it takes."""
    if len(text) > 1000:
        raise InvalidArgumentError("filter is longer than 1000 characters", field="filter")
    text = _plus_as_space(text)
    if not text.strip():
        return []
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.match(part)
        if match is None:
            raise InvalidArgumentError(
                f"filter term {quoted(part)} is not 'field = value' (terms joined by AND)",
                reason="INVALID_FILTER",
                field="filter",
            )
        name, op, value = match.groups()
        if name not in allowed:
            raise InvalidArgumentError(
                f"filter field {quoted(name)} is unknown; filter on {', '.join(allowed)}",
                reason="INVALID_FILTER",
                field="filter",
            )
        if op not in allowed[name]:
            raise InvalidArgumentError(
                f"filter field {name!r} takes {', '.join(allowed[name])}, not {op!r}",
                reason="INVALID_FILTER",
                field="filter",
            )
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((name, op, value))
    return terms


def _plus_as_space(text: str) -> str:
    """`+` outside double quotes is a space: form-style query encoding (URLSearchParams,
    httpx) sends spaces as `+`, and the gateway's transcoder passes them on as they are.
    Quote a value that contains a `+` (`email = "a+b@example.com"`)."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', text)
    return "".join(p if i % 2 else p.replace("+", " ") for i, p in enumerate(parts))


_AUDIT_FIELDS: dict[str, tuple[str, ...]] = {
    "actor": ("=",),
    "actor_credential": ("=",),
    "action": ("=",),
    "target": ("=",),
    "create_time": ("=", ">=", "<=", ">", "<"),
}
_MONGO_OPS = {">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt"}


def _time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"create_time {quoted(value)} is not an RFC 3339 time (2026-12-01T00:00:00Z)",
            reason="INVALID_FILTER",
            field="filter",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def audit_query(text: str) -> dict[str, Any]:
    """The MongoDB query of an audit filter."""
    query: dict[str, Any] = {}
    for name, op, value in parse_filter(text, _AUDIT_FIELDS):
        if name == "create_time":
            when = _time(value)
            if op == "=":
                query["created_at"] = when
            else:
                query.setdefault("created_at", {})[_MONGO_OPS[op]] = when
        else:
            query[name] = value
    return query


class AuditLog:
    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def record(
        self,
        *,
        tenant: str,
        actor: str,
        actor_credential: str,
        action: str,
        target: str,
        origin: Origin,
        details: dict[str, str] | None = None,
    ) -> AuditEvent:
        """Writes one event. The action has happened already: a database hiccup is retried
        a few times, then the call fails (the caller sees the action may be unrecorded)."""
        now = datetime.now(UTC)
        event = AuditEvent(
            id=f"{int(now.timestamp() * 1000):013d}{secrets.token_hex(6)}",
            tenant=tenant,
            actor=actor,
            actor_credential=actor_credential,
            action=action,
            target=target,
            created_at=now,
            origin=origin,
            details=dict(details or {}),
        )
        doc = {
            "_id": event.id,
            "tenant": tenant,
            "actor": actor,
            "actor_credential": actor_credential,
            "action": action,
            "target": target,
            "created_at": now,
            "source_ip": origin.source_ip,
            "user_agent": origin.user_agent[:256],
            "request_id": origin.request_id[:128],
            "details": event.details,
        }
        for delay in (0.1, 0.3, None):
            try:
                await self.collection.insert_one(doc)
                return event
            except PyMongoError:
                if delay is None:
                    log.error("audit event not written", extra={"action": action, "target": target})
                    raise UnavailableError(
                        f"{action} on {target} was done but its audit event could not be "
                        "written; the database is unavailable",
                        reason="AUDIT_UNAVAILABLE",
                    ) from None
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def list(
        self, tenant: str | None, filter_text: str, page_size: int, page_token: str
    ) -> tuple[list[AuditEvent], str]:
        """Events newest first; `tenant` None: every tenant (the operator)."""
        size = page_size or 50
        if size < 0 or size > MAX_PAGE_SIZE:
            raise InvalidArgumentError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
            )
        query = audit_query(filter_text)
        if tenant is not None:
            query["tenant"] = tenant
        after = _decode(page_token)
        if after:
            query["_id"] = {"$lt": after}
        cursor = self.collection.find(query).sort([("_id", DESCENDING)]).limit(size + 1)
        docs = [doc async for doc in cursor]
        events = [_from_doc(d) for d in docs[:size]]
        return events, _encode(events[-1].id) if len(docs) > size else ""


def _encode(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"a:{last_id}".encode()).decode().rstrip("=")


def _decode(token: str) -> str:
    if not token:
        return ""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        raw = ""
    if not raw.startswith("a:") or not re.fullmatch(r"[0-9a-f]{13,40}", raw[2:]):
        raise InvalidArgumentError(
            "page_token is not a token from a previous page",
            reason="INVALID_PAGE_TOKEN",
            field="page_token",
        )
    return raw[2:]

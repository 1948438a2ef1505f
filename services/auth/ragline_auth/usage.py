"""Usage analytics: Envoy streams one access-log entry per request (gRPC access log
service); each is added to an hourly bucket per tenant and endpoint with `$inc` upserts,
so N requests in are N counted, on MongoDB, Atlas and FerretDB alike (single-document
atomic writes, no transactions). Reports are summed from those buckets.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from envoy_api.envoy.data.accesslog.v3 import accesslog_pb2 as log_pb
from envoy_api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

from ragline_core.errors import InvalidArgumentError
from ragline_core.identity import TENANT_HEADER
from ragline_core.rpc_types import Context

log = logging.getLogger("ragline.auth.usage")

# Response headers in which services report what a call consumed (see ragline_core.usage).
USAGE_HEADERS = {
    "tokens_in": "x-ragline-usage-tokens-in",
    "tokens_out": "x-ragline-usage-tokens-out",
    "cost_usd": "x-ragline-usage-cost-usd",
    "cache_lookups": "x-ragline-usage-cache-lookups",
    "cache_hits": "x-ragline-usage-cache-hits",
}
COUNTERS = ("requests", "errors", "tokens_in", "tokens_out", "cost_usd", "cache_lookups",
            "cache_hits", "duration_ms")  # fmt: skip
_METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS",
            8: "TRACE", 9: "PATCH"}  # fmt: skip
MAX_PERIOD = timedelta(days=92)


@dataclass
class Stats:
    """Counters of one slice of usage."""

    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))

    def add(self, other: dict[str, Any]) -> None:
        for name in COUNTERS:
            self.values[name] += float(other.get(name, 0) or 0)


@dataclass(frozen=True)
class Record:
    """One request as the gateway saw it."""

    tenant: str
    endpoint: str
    hour: datetime
    counters: dict[str, float]


def _number(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if value >= 0 and value < 1e12 else 0.0


def to_record(entry: log_pb.HTTPAccessLogEntry) -> Record | None:
    """The usage of one access-log entry, or None when no tenant was authenticated."""
    if entry.common_properties.intermediate_log_entry:
        return None
    request, response = entry.request, entry.response
    tenant = request.request_headers.get(TENANT_HEADER, "")
    if not tenant:
        return None
    grpc_native = (
        request.request_headers.get("content-type", "").startswith("application/grpc")
        and not request.original_path
    )
    path = request.path.split("?", 1)[0]
    if grpc_native:
        endpoint = path[:200]
    else:
        route = entry.common_properties.route_name or path[:200]
        endpoint = f"{_METHODS.get(request.request_method, 'OTHER')} {route}"
    status = response.response_code.value if response.HasField("response_code") else 0
    grpc_status = response.response_trailers.get("grpc-status") or response.response_headers.get(
        "grpc-status", "0"
    )
    error = status >= 400 or status == 0 or (grpc_native and grpc_status not in ("", "0"))
    counters = {
        name: _number(response.response_headers.get(h)) for name, h in USAGE_HEADERS.items()
    }
    counters["requests"] = 1
    counters["errors"] = 1 if error else 0
    duration = entry.common_properties.duration
    counters["duration_ms"] = duration.seconds * 1000 + duration.nanos // 1_000_000
    start = entry.common_properties.start_time
    when = start.ToDatetime(tzinfo=UTC) if start.seconds else datetime.now(UTC)
    hour = when.replace(minute=0, second=0, microsecond=0)
    return Record(tenant, endpoint, hour, counters)


class UsageStore:
    """Hourly buckets in MongoDB: one document per tenant, hour and endpoint."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        await self.collection.create_index([("tenant", ASCENDING), ("hour", ASCENDING)])

    async def add(self, records: Iterable[Record]) -> None:
        merged: dict[tuple[str, datetime, str], dict[str, float]] = {}
        for rec in records:
            key = (rec.tenant, rec.hour, rec.endpoint)
            bucket = merged.setdefault(key, dict.fromkeys(COUNTERS, 0.0))
            for name, value in rec.counters.items():
                bucket[name] += value
        if not merged:
            return
        ops = [
            UpdateOne(
                {"_id": f"{tenant}|{hour:%Y%m%d%H}|{endpoint}"},
                {
                    "$inc": {k: (int(v) if k != "cost_usd" else v) for k, v in counters.items()},
                    "$setOnInsert": {"tenant": tenant, "hour": hour, "endpoint": endpoint},
                },
                upsert=True,
            )
            for (tenant, hour, endpoint), counters in merged.items()
        ]
        for _attempt in range(3):
            try:
                await self.collection.bulk_write(ops, ordered=True)
                return
            except BulkWriteError as exc:
                # Two gateways upserting the same new bucket: the loser's insert fails
                # with a duplicate key; everything before it was applied, so retry the rest.
                errors = exc.details.get("writeErrors", [])
                if not errors or any(e.get("code") != 11000 for e in errors):
                    raise
                ops = ops[errors[0]["index"] :]
        await self.collection.bulk_write(ops, ordered=True)

    async def report(
        self, tenant: str, start: datetime, end: datetime, daily: bool
    ) -> tuple[Stats, dict[str, Stats], dict[datetime, Stats]]:
        total = Stats()
        by_endpoint: dict[str, Stats] = defaultdict(Stats)
        by_period: dict[datetime, Stats] = defaultdict(Stats)
        first_hour = start.replace(minute=0, second=0, microsecond=0)
        cursor = self.collection.find({"tenant": tenant, "hour": {"$gte": first_hour, "$lt": end}})
        async for doc in cursor:
            hour: datetime = doc["hour"]
            if hour.tzinfo is None:
                hour = hour.replace(tzinfo=UTC)
            total.add(doc)
            by_endpoint[doc["endpoint"]].add(doc)
            bucket = hour.replace(hour=0) if daily else hour
            by_period[bucket].add(doc)
        return total, dict(by_endpoint), dict(by_period)


def period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The report period with defaults (last 24 hours), validated."""
    now = datetime.now(UTC)
    end = end or now
    start = start or end - timedelta(hours=24)
    if end <= start:
        raise InvalidArgumentError(
            "end_time must be after start_time", reason="INVALID_PERIOD", field="end_time"
        )
    if end - start > MAX_PERIOD:
        raise InvalidArgumentError(
            "the period is longer than 92 days", reason="INVALID_PERIOD", field="start_time"
        )
    return start, end


class AccessLogServicer(als_pb2_grpc.AccessLogServiceServicer):
    """envoy.service.accesslog.v3.AccessLogService: Envoy's stream of access logs."""

    def __init__(self, store: UsageStore) -> None:
        self.store = store

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: Context
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            records = [
                rec
                for entry in message.http_logs.log_entry
                if (rec := to_record(entry)) is not None
            ]
            try:
                await self.store.add(records)
            except PyMongoError:
                # Dropping the stream makes Envoy reconnect; the batch is lost (logged).
                log.error("usage batch lost: database unavailable", extra={"count": len(records)})
                with contextlib.suppress(Exception):
                    await context.abort(14, "usage store unavailable")  # type: ignore[arg-type]
                raise
        return als_pb2.StreamAccessLogsResponse()

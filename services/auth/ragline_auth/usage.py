"""Usage analytics: Envoy streams access-log entries (gRPC access log service, batched by
Envoy for up to a second); the sink adds each to in-memory counters per tenant, endpoint and
hour, and a flusher writes those counters once a second with one bulk write of `$inc`
upserts. So the per-request cost is a few dictionary updates, the database sees one write
per bucket per second whatever the traffic, and N requests in are N counted, on MongoDB,
Atlas and FerretDB alike (single-document atomic writes, no transactions). Counters whose
write fails stay in memory for the next flush; the last flush runs on shutdown. Reports
are summed from the hourly buckets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
from ragline_core.identity import KEY_ID_HEADER, TENANT_HEADER
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
BASE_COUNTERS = ("requests", "errors", "tokens_in", "tokens_out", "cost_usd", "cache_lookups",
                 "cache_hits", "duration_ms")  # fmt: skip
# Latency histogram, for percentiles: bucket i counts the requests that took at most 2**i ms
# (1 ms ... 65.5 s), the last one those slower. Stored like the other counters (only the
# buckets a flush touched are written).
LATENCY_BUCKETS = 18
HISTOGRAM = tuple(f"lat_{i}" for i in range(LATENCY_BUCKETS))
COUNTERS = BASE_COUNTERS + HISTOGRAM
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
_LAT0 = _INDEX[HISTOGRAM[0]]
_USAGE_SLOTS = tuple((_INDEX[name], header) for name, header in USAGE_HEADERS.items())
_METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS",
            8: "TRACE", 9: "PATCH"}  # fmt: skip
MAX_PERIOD = timedelta(days=92)
# Set by the gateway from the request's own method (ragline_stack.gateway.METHOD_HEADER).
METHOD_HEADER = "x-ragline-method"

# (tenant, hour since the epoch, endpoint, credential) -> counters in COUNTERS order. The
# credential is the API key's id (or a JWT's subject, the key it was minted from).
BucketKey = tuple[str, int, str, str]
Buckets = dict[BucketKey, list[float]]


@dataclass
class Stats:
    """Counters of one slice of usage."""

    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))

    def add(self, other: dict[str, Any]) -> None:
        for name in COUNTERS:
            self.values[name] += float(other.get(name, 0) or 0)


def _number(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if value >= 0 and value < 1e12 else 0.0


def add_entry(buckets: Buckets, entry: log_pb.HTTPAccessLogEntry, now_hour: int) -> bool:
    """Adds one access-log entry to its bucket; False when no tenant was authenticated."""
    common = entry.common_properties
    if common.intermediate_log_entry:
        return False
    request, response = entry.request, entry.response
    headers = request.request_headers
    tenant = headers.get(TENANT_HEADER, "")
    if not tenant:
        return False
    grpc_native = (
        headers.get("content-type", "").startswith("application/grpc") and not request.original_path
    )
    if grpc_native:
        endpoint = request.path.split("?", 1)[0][:200]
    else:
        route = common.route_name or request.path.split("?", 1)[0][:200]
        # The client's method (the transcoder turned REST calls into POSTs by now).
        method = headers.get(METHOD_HEADER) or _METHODS.get(request.request_method, "OTHER")
        endpoint = f"{method[:16]} {route}"
    started = common.start_time.seconds
    credential = headers.get(KEY_ID_HEADER, "")[:100]
    key = (tenant, started // 3600 if started else now_hour, endpoint, credential)
    counters = buckets.get(key)
    if counters is None:
        counters = buckets[key] = [0.0] * len(COUNTERS)
    status = response.response_code.value if response.HasField("response_code") else 0
    error = status >= 400 or status == 0
    if grpc_native and not error:
        grpc_status = response.response_trailers.get("grpc-status") or (
            response.response_headers.get("grpc-status", "0")
        )
        error = grpc_status not in ("", "0")
    counters[0] += 1
    counters[1] += error
    reported = response.response_headers
    if reported:
        for slot, header in _USAGE_SLOTS:
            if header in reported:
                counters[slot] += _number(reported[header])
    duration = common.duration
    ms = duration.seconds * 1000 + duration.nanos // 1_000_000
    counters[7] += ms
    counters[_LAT0 + latency_bucket(ms)] += 1
    return True


def latency_bucket(ms: float) -> int:
    """The histogram bucket of a duration: the smallest i with ms <= 2**i (the last: slower)."""
    if ms <= 1:
        return 0
    return min(LATENCY_BUCKETS - 1, math.ceil(math.log2(ms)))


def percentile_ms(values: dict[str, float], q: float) -> float:
    """The q-quantile of the durations counted in the histogram, ms, interpolated linearly
    within its bucket (so within a factor of 2; the last bucket reports its lower bound).
    0 when nothing was counted (also buckets written before the histogram existed)."""
    counts = [values.get(name, 0.0) for name in HISTOGRAM]
    rank = q * sum(counts)
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = 0.0 if i == 0 else 2.0 ** (i - 1)
            high = low if i == LATENCY_BUCKETS - 1 else 2.0**i
            return low + (high - low) * (rank - seen) / count
        seen += count
    return 0.0


def merge(into: Buckets, more: Buckets) -> None:
    for key, counters in more.items():
        target = into.get(key)
        if target is None:
            into[key] = counters
        else:
            for i, value in enumerate(counters):
                target[i] += value


def _upsert(key: BucketKey, counters: list[float]) -> UpdateOne:
    tenant, hour_n, endpoint, credential = key
    hour = datetime.fromtimestamp(hour_n * 3600, UTC)
    # One document per credential too (buckets written before had none: key "").
    doc_id = f"{tenant}|{hour:%Y%m%d%H}|{endpoint}" + (f"|{credential}" if credential else "")
    fixed = {"tenant": tenant, "hour": hour, "endpoint": endpoint, "key": credential}
    inc = {
        k: (v if k == "cost_usd" else int(v))
        for k, v in zip(COUNTERS, counters, strict=True)
        if v or k in BASE_COUNTERS
    }
    return UpdateOne(
        {"_id": doc_id},
        {"$inc": inc, "$setOnInsert": fixed},
        upsert=True,
    )


class UsageStore:
    """Hourly buckets in MongoDB: one document per tenant, hour and endpoint."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def setup(self) -> None:
        await self.collection.create_index([("tenant", ASCENDING), ("hour", ASCENDING)])

    async def add(self, buckets: Buckets) -> None:
        """Adds each bucket's counters with one ordered bulk write of upserts. Written
        buckets are removed from `buckets`: after an error it holds what was not applied."""
        keys = list(buckets)
        ops = [_upsert(key, buckets[key]) for key in keys]
        for attempt in range(4):
            try:
                await self.collection.bulk_write(ops, ordered=True)
            except BulkWriteError as exc:
                # Ordered: everything before the first failed write was applied.
                errors = exc.details.get("writeErrors", [])
                done = errors[0]["index"] if errors else 0
                for key in keys[:done]:
                    del buckets[key]
                keys, ops = keys[done:], ops[done:]
                # Two writers upserting the same new bucket: the loser's insert fails with
                # a duplicate key; retrying updates the bucket the winner created.
                if attempt == 3 or not errors or errors[0].get("code") != 11000:
                    raise
                continue
            buckets.clear()
            return

    async def report(
        self, tenant: str, start: datetime, end: datetime, daily: bool
    ) -> tuple[Stats, dict[str, Stats], dict[datetime, Stats], dict[str, Stats]]:
        total = Stats()
        by_endpoint: dict[str, Stats] = defaultdict(Stats)
        by_key: dict[str, Stats] = defaultdict(Stats)
        by_period: dict[datetime, Stats] = defaultdict(Stats)
        first_hour = start.replace(minute=0, second=0, microsecond=0)
        cursor = self.collection.find({"tenant": tenant, "hour": {"$gte": first_hour, "$lt": end}})
        async for doc in cursor:
            hour: datetime = doc["hour"]
            if hour.tzinfo is None:
                hour = hour.replace(tzinfo=UTC)
            total.add(doc)
            by_endpoint[doc["endpoint"]].add(doc)
            by_key[doc.get("key") or ""].add(doc)
            bucket = hour.replace(hour=0) if daily else hour
            by_period[bucket].add(doc)
        return total, dict(by_endpoint), dict(by_period), dict(by_key)


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


class UsageSink:
    """Counters received since the last flush; a flusher writes them every `interval`."""

    def __init__(self, store: UsageStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self.pending: Buckets = {}

    def add(self, entries: Iterable[log_pb.HTTPAccessLogEntry]) -> int:
        """Counts a batch of entries (no I/O); returns how many were tenant usage."""
        now_hour = int(datetime.now(UTC).timestamp()) // 3600
        pending = self.pending
        return sum(add_entry(pending, entry, now_hour) for entry in entries)

    async def flush(self) -> None:
        """Writes what is pending; on a database error it stays pending for the next try."""
        batch, self.pending = self.pending, {}
        if not batch:
            return
        try:
            await self.store.add(batch)
        except (PyMongoError, asyncio.CancelledError) as exc:
            # What was not written is kept, merged under anything that arrived meanwhile.
            # (A connection lost mid-write may have applied some of it: counted twice.)
            merge(self.pending, batch)
            log.error(
                "usage write failed; kept for the next flush",
                extra={"buckets": len(batch), "error": type(exc).__name__},
            )
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Flushes every `interval` until `stop`, then once more (drain)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            with contextlib.suppress(PyMongoError):
                await self.flush()
        if self.pending:
            log.error("usage lost at shutdown", extra={"buckets": len(self.pending)})


class AccessLogServicer(als_pb2_grpc.AccessLogServiceServicer):
    """envoy.service.accesslog.v3.AccessLogService: Envoy's stream of access logs."""

    def __init__(self, sink: UsageSink) -> None:
        self.sink = sink

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: Context
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            self.sink.add(message.http_logs.log_entry)
        return als_pb2.StreamAccessLogsResponse()

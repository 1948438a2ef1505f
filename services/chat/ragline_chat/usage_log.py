"""Usage analytics for WebSocket messages. Envoy's usage access log sees one request per
socket (the upgrade), so the chat service logs each message itself, as an access-log entry
on the same path: the auth service's AccessLogService, which counts it like any request
(ragline_auth.usage). Entries are sent in one batch a second; a batch that fails is kept
for the next one (bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import grpc
from envoy_api.envoy.data.accesslog.v3 import accesslog_pb2 as log_pb
from envoy_api.envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2, wrappers_pb2

from ragline_chat.domain import Usage
from ragline_core.identity import TENANT_HEADER
from ragline_core.usage import COST_USD, TOKENS_IN, TOKENS_OUT

log = logging.getLogger("ragline.chat.usage")

# The endpoint a message counts under: "<method> <route>" as the auth service names
# requests, with the method WS (the upgrade itself is "GET /api/v1/chat/ws").
METHOD = "WS"
METHOD_HEADER = "x-ragline-method"  # ragline_stack.gateway.METHOD_HEADER
LOG_NAME = "ragline_usage"
MAX_PENDING = 10_000
SEND_TIMEOUT_S = 5.0


class UsageLog:
    """Message entries for the auth service's access-log sink, flushed every `interval`."""

    def __init__(self, channel: grpc.aio.Channel, route: str, interval: float = 1.0) -> None:
        self._send = als_pb2_grpc.AccessLogServiceStub(channel).StreamAccessLogs
        self.route = route
        self.interval = interval
        self.pending: list[log_pb.HTTPAccessLogEntry] = []

    def record(self, tenant: str, status: int, started: float, usage: Usage | None) -> None:
        """One message: its tenant, HTTP-equivalent status, start (time.time()) and usage."""
        if len(self.pending) >= MAX_PENDING:
            self.pending.pop(0)  # the auth service is unreachable for long: oldest first
        reported = {}
        if usage is not None:
            reported = {
                TOKENS_IN: str(usage.prompt_tokens),
                TOKENS_OUT: str(usage.completion_tokens),
                COST_USD: f"{usage.estimated_cost_usd:.8f}",
            }
        start = timestamp_pb2.Timestamp()
        start.FromNanoseconds(int(started * 1e9))
        took = duration_pb2.Duration()
        took.FromNanoseconds(int(max(0.0, time.time() - started) * 1e9))
        self.pending.append(
            log_pb.HTTPAccessLogEntry(
                common_properties=log_pb.AccessLogCommon(
                    start_time=start, route_name=self.route, duration=took
                ),
                request=log_pb.HTTPRequestProperties(
                    path=self.route,
                    request_headers={
                        TENANT_HEADER: tenant,
                        METHOD_HEADER: METHOD,
                        "content-type": "application/json",
                    },
                ),
                response=log_pb.HTTPResponseProperties(
                    response_code=wrappers_pb2.UInt32Value(value=status),
                    response_headers=reported,
                ),
            )
        )

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        message = als_pb2.StreamAccessLogsMessage(
            identifier=als_pb2.StreamAccessLogsMessage.Identifier(log_name=LOG_NAME),
            http_logs=als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries(log_entry=batch),
        )
        try:
            await self._send(iter([message]), timeout=SEND_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            room = MAX_PENDING - len(self.pending)
            if room > 0:
                self.pending[:0] = batch[-room:]
            log.warning("message usage not sent; kept", extra={"code": exc.code().name})

    async def run(self, stop: asyncio.Event) -> None:
        """Flushes every `interval` until `stop`, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            await self.flush()

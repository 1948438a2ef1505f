"""Outgoing gRPC channels to other ragline services, carrying the caller's deadline."""

from __future__ import annotations

import grpc

from ragline_core.interceptors import deadline_interceptors
from ragline_core.settings import CoreSettings

MAX_MESSAGE_BYTES = 32 * 1024 * 1024

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def service_channel(settings: CoreSettings, service: str) -> grpc.aio.Channel:
    """An insecure channel (in-cluster traffic; TLS is terminated at the edge or mesh)."""
    return grpc.aio.insecure_channel(
        settings.service_addr(service),
        options=CHANNEL_OPTIONS,
        interceptors=deadline_interceptors(settings.REQUEST_TIMEOUT),
    )

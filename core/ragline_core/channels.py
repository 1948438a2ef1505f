"""Outgoing gRPC channels to other ragline services, carrying the caller's deadline."""

from __future__ import annotations

import grpc

from ragline_core.interceptors import deadline_interceptors
from ragline_core.internal_tls import TlsFiles
from ragline_core.settings import CoreSettings

MAX_MESSAGE_BYTES = 32 * 1024 * 1024

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def service_channel(
    settings: CoreSettings, service: str, tls: TlsFiles | None = None
) -> grpc.aio.Channel:
    """A channel to another service: mutual TLS with this workload's certificate when
    INTERNAL_TLS_DIR is set (the server's name is checked against its address), else
    plaintext."""
    interceptors = deadline_interceptors(settings.REQUEST_TIMEOUT)
    target = settings.service_addr(service)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, tls.channel_credentials(), options=CHANNEL_OPTIONS, interceptors=interceptors
    )

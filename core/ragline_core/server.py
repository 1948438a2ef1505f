"""Server bootstrap shared by every service.

entry point → settings → `run_service` → (workers) → `serve`: builds a grpc.aio server with
the core interceptor, health, reflection, SystemService and metrics, lets the service
register its servicers, and drains on SIGTERM (health NOT_SERVING, in-flight calls finish).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from ragline.auth.v1 import auth_service_pb2 as auth_pb
from ragline.auth.v1 import auth_service_pb2_grpc as auth_grpc
from ragline.system.v1 import system_service_pb2, system_service_pb2_grpc
from ragline_core import caller, effective_config
from ragline_core.channels import CHANNEL_OPTIONS, service_channel
from ragline_core.interceptors import ServerInterceptor
from ragline_core.internal_tls import TlsConfigError, TlsFiles
from ragline_core.internal_tls import load as load_tls
from ragline_core.logs import configure_logging
from ragline_core.settings import CoreSettings, make_settings
from ragline_core.stores import mongo_client, redis_client
from ragline_core.system import SERVICES, HealthChecker, SystemServicer
from ragline_core.telemetry import setup_tracing

log = logging.getLogger("ragline.server")

Cleanup = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    """What a service gets to build itself from: settings, stores, channels, health."""

    settings: CoreSettings
    service: str
    health: Any  # grpc_health.v1.health.aio.HealthServicer (untyped)
    mongo: Any
    redis: Any
    channels: dict[str, grpc.aio.Channel]
    # This workload's mutual-TLS identity (INTERNAL_TLS_DIR), None on plaintext.
    tls: TlsFiles | None = None
    cleanups: list[Cleanup] = field(default_factory=list)

    def set_component(self, name: str, serving: bool) -> None:
        """Reports a named sub-component (e.g. "provider.local") through gRPC health."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        task = self.health.set(name, status)
        if asyncio.iscoroutine(task):
            asyncio.get_running_loop().create_task(task)


@dataclass(frozen=True)
class ServiceSpec:
    """A service's identity and how it registers its servicers on a server."""

    name: str
    # Fully qualified gRPC service names the service implements.
    service_names: tuple[str, ...]
    # Registers servicers; may append cleanups to runtime.cleanups.
    register: Callable[[grpc.aio.Server, Runtime], Awaitable[None]]
    # More services server reflection lists (their descriptors imported by the service): the
    # auth service answers reflection for the gateway's whole API.
    also_reflected: tuple[str, ...] = ()


def authenticator(
    settings: CoreSettings, service: str, auth_channel: grpc.aio.Channel
) -> caller.Authenticator:
    """Verifies callers with the internal token keys and, for forwarded user JWTs, the
    auth service's JWKS; installed for this process's outgoing calls too."""
    try:
        internal = caller.InternalTokens(
            settings.internal_token_keys(), settings.INTERNAL_TOKEN_TTL_S
        )
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stub = auth_grpc.AuthServiceStub(auth_channel)

    async def fetch_jwks() -> dict[str, Any]:
        body = await stub.GetJwks(auth_pb.GetJwksRequest(), timeout=5)
        return caller.jwks_from_body(body.data)

    found = caller.Authenticator(
        internal, caller.UserTokens(fetch_jwks, settings.JWT_ISSUER, settings.JWT_AUDIENCE)
    )
    caller.install(found, service)
    return found


def internal_tls(settings: CoreSettings, service: str) -> TlsFiles | None:
    """This workload's certificate (INTERNAL_TLS_DIR), checked; exits naming the problem."""
    if not settings.INTERNAL_TLS_DIR:
        return None
    try:
        found = load_tls(settings.INTERNAL_TLS_DIR)
    except TlsConfigError as exc:
        print(f"invalid configuration: INTERNAL_TLS_DIR: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if found.workload != service:
        print(
            f"invalid configuration: INTERNAL_TLS_DIR: the certificate names workload "
            f"{found.workload!r}, not {service!r}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return found


async def health_only_server(address: str, servicer: Any, reuse_port: bool) -> grpc.aio.Server:
    """Plaintext grpc.health.v1 and nothing else, for probes that cannot present a client
    certificate (HEALTH_ADDR): it tells whether the service serves, never any data."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    await server.start()
    return server


async def serve(spec: ServiceSpec, settings: CoreSettings, *, reuse_port: bool = False) -> None:
    """Runs one server process until SIGTERM/SIGINT, then drains."""
    tls = internal_tls(settings, spec.name)
    channels = {name: service_channel(settings, name, tls) for name in SERVICES}
    interceptor = ServerInterceptor(
        spec.name,
        authenticator(settings, spec.name, channels["auth"]),
        gateway_peer_required=tls is not None,
        max_in_flight=settings.MAX_IN_FLIGHT,
    )
    options = [*CHANNEL_OPTIONS, ("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.aio.server(interceptors=[interceptor], options=options)

    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    mongo = mongo_client(settings, appname=f"ragline-{spec.name}")
    redis = redis_client(settings)
    runtime = Runtime(settings, spec.name, health_servicer, mongo, redis, channels, tls)

    checker = HealthChecker(mongo, redis, channels, settings.API_VERSION)
    system_service_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(checker), server)
    await spec.register(server, runtime)
    # In the background: a database that is still starting must not hold the service up.
    published = asyncio.get_running_loop().create_task(
        effective_config.publish(
            mongo[settings.MONGODB_DATABASE], spec.name, settings.API_VERSION, settings
        )
    )

    names = (
        *spec.service_names,
        system_service_pb2.DESCRIPTOR.services_by_name["SystemService"].full_name,
    )
    if settings.ENABLE_REFLECTION:
        reflection.enable_server_reflection(
            tuple(
                dict.fromkeys(
                    (*names, *spec.also_reflected, reflection.SERVICE_NAME, health.SERVICE_NAME)
                )
            ),
            server,
        )

    address = settings.service_addr(spec.name)
    if tls is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, tls.server_credentials())
    await server.start()
    probes = None
    if settings.HEALTH_ADDR:
        probes = await health_only_server(settings.HEALTH_ADDR, health_servicer, reuse_port)
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "serving",
        extra={"address": address, "pid": os.getpid(), "mutual_tls": tls is not None},
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    published.cancel()

    log.info("draining", extra={"grace_s": settings.SHUTDOWN_GRACE})
    await health_servicer.enter_graceful_shutdown()
    if settings.DRAIN_DELAY:
        await asyncio.sleep(settings.DRAIN_DELAY)
    await _bounded("grpc server", server.stop(settings.SHUTDOWN_GRACE), settings.SHUTDOWN_GRACE)
    if probes is not None:
        await _bounded("health probes", probes.stop(0))
    for cleanup in reversed(runtime.cleanups):
        await _bounded(getattr(cleanup, "__qualname__", "cleanup"), cleanup())
    for name, channel in channels.items():
        await _bounded(f"{name} channel", channel.close(None))
    await _bounded("redis", redis.aclose())
    await _bounded("mongodb", mongo.close())
    log.info("stopped")


# Seconds a shutdown step may take beyond its own grace before it is given up.
STEP_TIMEOUT_S = 5.0


async def _bounded(step: str, action: Awaitable[Any], grace: float = 0.0) -> None:
    """One shutdown step, given up and named in the log when it fails or takes longer than
    its grace + STEP_TIMEOUT_S: a stuck step must not keep a stopped process alive (found
    by the fault battery: a retriever that outlived a Redis restart never exited)."""
    try:
        await asyncio.wait_for(action, grace + STEP_TIMEOUT_S)
    except TimeoutError:
        log.warning(
            "shutdown step timed out", extra={"step": step, "timeout_s": grace + STEP_TIMEOUT_S}
        )
    except Exception:
        log.warning("shutdown step failed", extra={"step": step}, exc_info=True)


def _worker(spec_path: str, settings_path: str) -> None:
    """Entry of one worker process (spawned, so it imports everything afresh)."""
    spec, settings_cls = _load(spec_path), _load(settings_path)
    settings = make_settings(settings_cls)
    _init_process(spec.name, settings)
    asyncio.run(serve(spec, settings, reuse_port=True))


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _init_process(service: str, settings: CoreSettings) -> None:
    configure_logging(service, settings.LOG_LEVEL)
    setup_tracing(
        f"ragline-{service}", settings.OTEL_SERVICE_NAMESPACE, settings.OTEL_EXPORTER_OTLP_ENDPOINT
    )


def run_service(spec_path: str, settings_path: str) -> None:
    """Runs a service with API_WORKERS processes sharing its port (SO_REUSEPORT).

    `spec_path` and `settings_path` are "module:attribute" strings so that spawned
    workers can import them.
    """
    from ragline_core.metrics import start_metrics_server
    from ragline_core.settings import load_settings

    # Settings first: a bad value should stop start-up before anything heavy is imported.
    settings: CoreSettings = load_settings(_load(settings_path))
    spec: ServiceSpec = _load(spec_path)
    if settings.API_WORKERS == 1:
        _init_process(spec.name, settings)
        if settings.ENABLE_METRICS:
            start_metrics_server(settings.METRICS_HOST, settings.metrics_port(spec.name))
        asyncio.run(serve(spec, settings))
        return
    _supervise(spec, settings, spec_path, settings_path)


def _supervise(
    spec: ServiceSpec, settings: CoreSettings, spec_path: str, settings_path: str
) -> None:
    """Starts the workers, serves their merged metrics, and forwards SIGTERM."""
    configure_logging(spec.name, settings.LOG_LEVEL)
    metrics_dir = tempfile.mkdtemp(prefix=f"ragline-{spec.name}-metrics-")
    # Set before any worker imports prometheus_client, so they write shared files.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from ragline_core.metrics import start_metrics_server

    if settings.ENABLE_METRICS:
        start_metrics_server(settings.METRICS_HOST, settings.metrics_port(spec.name))
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_worker, args=(spec_path, settings_path), daemon=False)
        for _ in range(settings.API_WORKERS)
    ]
    for proc in workers:
        proc.start()
    log.info("workers started", extra={"workers": [p.pid for p in workers]})

    def forward(signum: int, _frame: object) -> None:
        for proc in workers:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in workers:
        proc.join()


__all__ = ["Runtime", "ServiceSpec", "run_service", "serve"]

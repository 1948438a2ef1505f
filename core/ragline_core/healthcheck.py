"""python -m ragline_core.healthcheck [ADDR] — exits 0 when the gRPC server at ADDR
(default: the plaintext health listener $HEALTH_ADDR if set, else 127.0.0.1:$GRPC_PORT or
127.0.0.1:50051) reports SERVING. For container health checks, where no grpc_health_probe
binary is available. With INTERNAL_TLS_DIR set and no HEALTH_ADDR, it connects with the
workload's own certificate (the service port refuses plaintext then)."""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragline_core.internal_tls import TlsConfigError
from ragline_core.internal_tls import load as load_tls


def _channel(addr: str, plaintext: bool) -> grpc.Channel:
    folder = os.environ.get("INTERNAL_TLS_DIR")
    if plaintext or not folder:
        return grpc.insecure_channel(addr)
    return grpc.secure_channel(addr, load_tls(folder).channel_credentials())


def main(argv: list[str]) -> int:
    health_addr = os.environ.get("HEALTH_ADDR")
    if len(argv) > 1:
        addr, plaintext = argv[1], False
    elif health_addr:
        addr, plaintext = f"127.0.0.1:{health_addr.rpartition(':')[2]}", True
    else:
        addr, plaintext = f"127.0.0.1:{os.environ.get('GRPC_PORT', '50051')}", False
    try:
        with _channel(addr, plaintext) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}", file=sys.stderr)
        return 1
    except TlsConfigError as exc:
        print(f"unhealthy: INTERNAL_TLS_DIR: {exc}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

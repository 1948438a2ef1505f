"""python -m ragline_core.healthcheck [ADDR] — exits 0 when the gRPC server at ADDR
(default 127.0.0.1:$GRPC_PORT or 127.0.0.1:50051) reports SERVING. For container health
checks, where no grpc_health_probe binary is available."""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    addr = argv[1] if len(argv) > 1 else f"127.0.0.1:{os.environ.get('GRPC_PORT', '50051')}"
    try:
        with grpc.insecure_channel(addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print("SERVING" if serving else "NOT_SERVING")
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

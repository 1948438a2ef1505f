"""A throwaway stack on free ports for benchmarks (same code the tests use)."""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ragline_stack.stack import Stack, StackConfig

SERVICES = ("embedder", "retriever", "chat", "ingest")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def bench_stack(**env: str) -> Iterator[Stack]:
    """Starts FerretDB, Redis, the services and Envoy; stops them afterwards."""
    with tempfile.TemporaryDirectory(prefix="ragline-bench-") as tmp:
        run_dir = Path(tmp)
        cfg = StackConfig(
            run_dir=run_dir,
            api_port=_free_port(),
            admin_port=_free_port(),
            mongo_port=_free_port(),
            redis_port=_free_port(),
            service_ports={s: _free_port() for s in SERVICES},
            metrics_ports={s: _free_port() for s in SERVICES},
            database="ragline_bench",
            request_timeout_s=120.0,
            max_request_bytes=16 * 1024 * 1024,
        )
        cfg.service_env = {
            "RAGLINE_ENV_FILE": str(run_dir / "no.env"),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        stack = Stack(cfg)
        try:
            stack.start_all(timeout=300)
            yield stack
        finally:
            stack.stop_all()

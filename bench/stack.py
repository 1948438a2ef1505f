"""A throwaway stack on free ports for benchmarks (same code the tests use)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ragline_stack.stack import Stack, free_port_config

# A development key (VALID_API_KEYS): benchmarks call the API as a real client would.
DEV_HEADERS = {"Authorization": "Bearer dev-key-1"}


@contextlib.contextmanager
def bench_stack(*, internal_tls: bool = False, **env: str) -> Iterator[Stack]:
    """Starts FerretDB, Redis, the services and Envoy; stops them afterwards (with
    `internal_tls`, every hop behind Envoy on mutual TLS)."""
    with tempfile.TemporaryDirectory(prefix="ragline-bench-") as tmp:
        # The dev key gets the highest rate-limit tier: benchmarks measure speed, not limits.
        cfg = free_port_config(Path(tmp), LOG_LEVEL="WARNING", DEV_KEYS_TIER="enterprise", **env)
        cfg.database = "ragline_bench"
        cfg.request_timeout_s = 120.0
        cfg.max_request_bytes = 16 * 1024 * 1024
        cfg.rate_limit_scale = 1000
        cfg.internal_tls = internal_tls
        stack = Stack(cfg)
        try:
            stack.start_all(timeout=300)
            yield stack
        except BaseException:
            # Keep the logs of a failed run (the folder itself is removed).
            kept = Path(tempfile.gettempdir()) / "ragline-bench-failed-logs"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(cfg.log_dir, kept, dirs_exist_ok=True)
            print(f"bench failed; logs kept in {kept}")
            raise
        finally:
            stack.stop_all()

"""Extra service processes beside the session stack (same stores, own port), and what
tests need to see about processes."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragline_stack.stack import ROOT, Stack

T = TypeVar("T")


@contextlib.contextmanager
def extra_service(
    stack: Stack, name: str, port: int, metrics_port: int, log: Path, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `python -m ragline_<name>` on `port` until the block ends (then SIGTERM)."""
    environ = stack.cfg.env()
    environ[f"{name.upper()}_ADDR"] = f"127.0.0.1:{port}"
    environ[f"{name.upper()}_METRICS_PORT"] = str(metrics_port)
    environ.update(env)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"ragline_{name}"],
            env=environ,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_serving(f"127.0.0.1:{port}", proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_serving(addr: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited {proc.returncode}: {log.read_text()[-2000:]}")
        with grpc.insecure_channel(addr) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"service at {addr} not serving after {timeout}s")


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def poll(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Calls `check` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout:g}s (last: {value!r})")
        time.sleep(interval)

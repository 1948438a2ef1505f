"""Toxiproxy (Shopify, v2.12.0, `scripts/install_go_tools.sh toxiproxy`): a TCP proxy put
between two components whose "toxics" add latency, jitter or a partition, driven through
its HTTP API. Started on loopback by the battery and stopped by it (by pid)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ragline_stack.stack import ROOT, free_port

BINARY = ROOT / ".bin" / "toxiproxy-server"


class Toxiproxy:
    def __init__(self, api: str) -> None:
        self.api = api
        self.client = httpx.Client(base_url=api, timeout=10)

    def proxy(self, name: str, upstream: str) -> int:
        """A proxy to `upstream` on a free loopback port; returns the port."""
        port = free_port()
        reply = self.client.post(
            "/proxies",
            json={"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream},
        )
        reply.raise_for_status()
        return port

    def add(self, proxy: str, name: str, kind: str, stream: str, **attributes: Any) -> None:
        """A toxic on one direction ("upstream": towards the server, "downstream": back)."""
        reply = self.client.post(
            f"/proxies/{proxy}/toxics",
            json={"name": name, "type": kind, "stream": stream, "attributes": attributes},
        )
        reply.raise_for_status()

    def clear(self, proxy: str) -> None:
        """Removes every toxic of the proxy."""
        for toxic in self.client.get(f"/proxies/{proxy}/toxics").json():
            self.client.delete(f"/proxies/{proxy}/toxics/{toxic['name']}").raise_for_status()


@contextlib.contextmanager
def toxiproxy(log: Path) -> Iterator[Toxiproxy]:
    if not BINARY.exists():
        raise RuntimeError(
            "toxiproxy-server not found: run `make setup` (scripts/install_go_tools.sh)"
        )
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own pinned binary
            [str(BINARY), "-host", "127.0.0.1", "-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Toxiproxy(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if server.client.get("/version").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"toxiproxy did not start: {log.read_text()[-1000:]}")
            time.sleep(0.1)
        yield server
    finally:
        server.client.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

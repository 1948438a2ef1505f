"""Every metric the dashboard and the alert rules query exists in a live scrape of the
services and the gateway (names only: a panel over a name nobody exports is a lie)."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid

import pytest

from tests.deploy.metric_names import BUILTIN, metric_names_used

pytestmark = pytest.mark.e2e
_NAME = re.compile(r"^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)")


def names_in(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            names.add(match.group(1))
    return names


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - loopback
        return str(reply.read().decode())


async def test_every_dashboard_and_alert_metric_is_exported(api, stack):
    # Exercise each service so labelled series exist.
    collection = f"m{uuid.uuid4().hex[:8]}"
    await api.post("/api/v1/embeddings", json={"text": "metrics"})
    await api.post("/api/v1/embeddings", json={"text": "metrics"})
    reply = await api.post(
        "/api/v1/ingest",
        json={"collection": collection, "documents": [{"title": "m", "content": "metric text"}]},
    )
    assert reply.status_code == 200, reply.text
    await api.post("/api/v1/search", json={"query": "metric", "collection": collection})
    await api.post("/api/v1/search", json={"query": "metric", "collection": collection})
    exported: set[str] = set()
    for service, port in stack.cfg.metrics_ports.items():
        text = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
        assert "ragline_rpc_requests_total" in text, service
        exported |= names_in(text)
    # Envoy's, from its internal metrics port, as Prometheus scrapes it (no key).
    envoy = f"http://127.0.0.1:{stack.cfg.envoy_metrics_port}/metrics"
    exported |= names_in(await asyncio.to_thread(scrape, envoy))
    missing = sorted(metric_names_used() - exported - BUILTIN)
    assert not missing, f"dashboard/alerts use metrics nobody exports: {missing}"

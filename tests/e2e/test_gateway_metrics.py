"""Envoy's metrics: Prometheus scrapes an internal port that serves nothing else, without a
key; on the public port GET /metrics needs the admin scope."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, create_key

pytestmark = pytest.mark.e2e

SAMPLE = "envoy_http_downstream_rq_total"


async def test_internal_port_serves_metrics_and_nothing_else(stack):
    base = f"http://127.0.0.1:{stack.cfg.envoy_metrics_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as scraper:
        reply = await scraper.get("/metrics")
        assert reply.status_code == 200 and SAMPLE in reply.text
        # Not the API, not the admin's other pages, not another method.
        for method, path in (
            ("GET", "/api/v1/embedding-models"),
            ("GET", "/stats"),
            ("GET", "/config_dump"),
            ("GET", "/stats/prometheus"),
            ("POST", "/metrics"),
        ):
            other = await scraper.request(method, path)
            assert reason_of(error_body(other, 404)) == "NOT_FOUND", (method, path)


async def test_public_metrics_need_the_admin_scope(api, anon_api):
    assert reason_of(error_body(await anon_api.get("/metrics"), 401)) == "MISSING_CREDENTIALS"
    key, _ = await create_key(api, f"m-{secrets.token_hex(4)}", ["embeddings", "analytics"])
    denied = await anon_api.get("/metrics", headers=bearer(key))
    assert reason_of(error_body(denied, 403)) == "SCOPE_DENIED"
    admin = await api.get("/metrics")  # dev-key-1 has the admin scope
    assert admin.status_code == 200 and SAMPLE in admin.text

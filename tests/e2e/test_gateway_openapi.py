"""The OpenAPI document served by the gateway, fuzzed by schemathesis (bounded run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


async def test_documented_endpoints_show_their_shapes(anon_api):
    doc = (await anon_api.get("/openapi.json")).json()
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/embeddings", "post"),
        ("/api/v1/search", "post"),
        ("/api/v1/chat", "post"),
        ("/api/v1/ingest", "post"),
        ("/api/v1/analytics/usage", "get"),
        ("/health", "get"),
    ]:
        assert method in paths[path], path
    defs = doc["components"]["schemas"]
    assert {"text", "texts", "model"} <= set(defs["CreateEmbeddingsRequest"]["properties"])
    assert {"embeddings", "model", "dimensions", "usage"} <= set(
        defs["CreateEmbeddingsResponse"]["properties"]
    )
    usage = {p["name"] for p in paths["/api/v1/analytics/usage"]["get"]["parameters"]}
    assert {"tenant", "start_time", "end_time", "granularity"} <= usage


def test_schemathesis_finds_no_failures(stack, tmp_path):
    """Embedding, key, token and usage operations, including schemathesis' auth checks
    (requests without the key must be rejected)."""
    proc = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{stack.cfg.base_url}/openapi.json",
            "--url",
            stack.cfg.base_url,
            "-H",
            f"Authorization: Bearer {DEV_KEY}",
            "--include-path-regex",
            "^/(api/v1/(embedding-models|keys|keys/[^:]+|tokens|analytics/usage)|health)$",
            # Revoke and rotate are tested on purpose elsewhere; fuzzing them could revoke
            # the keys the rest of the suite uses. Unsupported methods (PUT on a GET path)
            # are a known gap: see docs/gateway.md.
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "5",
            "--workers",
            "1",
            "--checks",
            "all",
            # Creating keys and tokens is not idempotent by design; negative data may
            # legitimately be accepted where the gateway defaults a missing field.
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection,use_after_free,"
            "ensure_resource_availability,unsupported_method",
            "--request-timeout",
            "20",
            "--max-time",
            "90",
            "--seed",
            "1",
            "--no-color",
            "--suppress-health-check",
            "all",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]

"""The component list (ragline_stack.components) against every deployment artifact: each
service is in each file, and a service added to the list is reported file by file."""

from __future__ import annotations

from typing import Any

import pytest

from ragline_stack import components
from ragline_stack.components import Component

from . import artifacts
from .tools import OVERLAYS

# A service that exists in no artifact: what adding one to the list would look like.
NEWCOMER = Component("reranker", 50056, 9106, calls=("embedder",), http_port=50066)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_in_every_artifact(
    manifests: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    found = artifacts.read_artifacts(manifests[overlay])
    assert artifacts.check_artifacts(found) == []


def test_a_sixth_service_fails_until_every_artifact_has_it(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    found = artifacts.read_artifacts(manifests["prod"])
    extended = (*components.SERVICES, NEWCOMER)
    problems = "\n".join(artifacts.check_artifacts(found, extended))
    for expected in [
        "docker/service.Dockerfile target reranker: missing",
        "docker-compose.yml service reranker: missing",
        "docker-compose.yml service envoy: depends_on reranker missing",
        "k8s: Deployment/reranker missing",
        "k8s: ServiceAccount/reranker missing",
        "k8s: Service/reranker missing",
        "k8s: Service/reranker-headless missing",
        "k8s: HorizontalPodAutoscaler/reranker missing",
        "k8s: PodDisruptionBudget/reranker missing",
        "k8s: NetworkPolicy/reranker missing",
        "k8s: ragline-config RERANKER_ADDR must be reranker:50056",
        "k8s/base/envoy/envoy.yaml: cluster reranker must reach reranker-headless:50056",
        "k8s/base/envoy/envoy.yaml: cluster reranker_http must reach reranker-headless:50066",
        "k8s/base/envoy/envoy.yaml: cluster system (health) lacks reranker-headless:50056",
        "monitoring/prometheus/prometheus.yml: job ragline-reranker on reranker:9106 missing",
        ".github/workflows/ci.yml: images job does not build reranker",
        # The others learn its address too.
        "docker-compose.yml service chat: RERANKER_ADDR must be reranker:50056",
    ]:
        assert expected in problems, problems
    # Nothing is reported about the five that are there.
    for c in components.SERVICES:
        assert f"target {c.name}:" not in problems
        assert f"Deployment/{c.name} " not in problems


def test_a_missing_port_or_policy_is_named(manifests: dict[str, list[dict[str, Any]]]) -> None:
    """The chat HTTP edge and the gateway's egress to auth, as the issue found them."""
    docs = [
        d
        for d in manifests["prod"]
        if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "envoy")
    ]
    found = artifacts.read_artifacts(docs)
    problems = "\n".join(artifacts.check_artifacts(found))
    assert "k8s NetworkPolicy: envoy cannot reach auth:50055" in problems
    assert "k8s NetworkPolicy: envoy cannot reach chat:50063" in problems

    chat = next(
        d for d in manifests["prod"] if d["kind"] == "Service" and d["metadata"]["name"] == "chat"
    )
    ports = chat["spec"]["ports"]
    chat["spec"]["ports"] = [p for p in ports if p["name"] != "http"]
    try:
        problems = "\n".join(artifacts.check_artifacts(artifacts.read_artifacts(manifests["prod"])))
    finally:
        chat["spec"]["ports"] = ports
    assert "k8s: Service/chat port 'http' must be 50063" in problems

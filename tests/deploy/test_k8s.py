"""k8s/: kustomize builds, schema validation, the project's policy, network reachability and
a checkov scan of each overlay, plus proofs that each check fails on a broken input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragline_stack import components

from .policy import (
    GATEWAY_METRICS_PORT,
    METRICS_PORTS,
    SERVICES,
    HpaRange,
    Pod,
    allowed_edges,
    can_reach,
    check_manifests,
    egress_ports_anywhere,
    pods,
)
from .tools import (
    CRD_KINDS,
    KUBERNETES_VERSION,
    OVERLAYS,
    ROOT,
    dump_docs,
    load_docs,
    output,
    run,
    tool,
)

HPA = {"dev": HpaRange(1, 3), "prod": HpaRange(2, 10)}
CHECKOV_CONFIG = ROOT / "k8s" / "checkov.yaml"

# The call graph of the component list: who calls whom, Envoy reaching every service.
CALL_GRAPH = components.call_graph()
# networkpolicy-health-mesh.yaml: every service reaches every service's gRPC port.
HEALTH_MESH = {(src, dst, port) for src in SERVICES for dst, port in SERVICES.items()}
DEV_STORES = {(app, "mongo", 27017) for app in SERVICES} | {
    (app, "redis", 6379) for app in [*SERVICES, "ratelimit"]
}


def _without(docs: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    kept = [d for d in docs if not (d["kind"] == kind and d["metadata"]["name"] == name)]
    assert len(kept) == len(docs) - 1, f"{kind}/{name} not found"
    return kept


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_every_component(
    manifests: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in manifests[overlay]}
    for app in [*SERVICES, "envoy", "ratelimit"]:
        assert ("Deployment", app) in names
        assert ("ServiceAccount", app) in names
        assert ("Service", app) in names
    for app in [*SERVICES, "envoy"]:
        assert ("HorizontalPodAutoscaler", app) in names
    for app in SERVICES:
        assert ("Service", f"{app}-headless") in names
    assert ("Namespace", "rag-system") in names
    assert ("PrometheusRule", "ragline") in names
    assert {n for k, n in names if k == "ServiceMonitor"} == {"ragline-services", "ragline-gateway"}
    assert ("NetworkPolicy", "default-deny-all") in names
    configmaps = {n for k, n in names if k == "ConfigMap"}
    for prefix in ("ragline-config-", "envoy-config-", "ratelimit-config-"):
        assert any(n.startswith(prefix) for n in configmaps), (prefix, configmaps)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_schema_valid(
    manifests: dict[str, list[dict[str, Any]]], tmp_path: Path, overlay: str
) -> None:
    """kubernetes-validate (strict, offline schemas). Custom resources have no schema there
    and are skipped explicitly: only the Prometheus Operator kinds may be skipped."""
    docs = manifests[overlay]
    skipped = {d["kind"] for d in docs if d["kind"] in CRD_KINDS}
    assert skipped == CRD_KINDS
    target = tmp_path / "core.yaml"
    target.write_text(dump_docs([d for d in docs if d["kind"] not in CRD_KINDS]))
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(target)]
    )
    assert result.returncode == 0, output(result)


def test_schema_validation_rejects_broken_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {
                    "replicas": "two",
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {
                            "containers": [{"name": "x", "image": "x:1", "imagePolicy": "Always"}]
                        },
                    },
                },
            }
        )
    )
    result = run([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(bad)])
    assert result.returncode != 0, output(result)


def test_kustomize_fails_on_missing_resource(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = run([tool("kustomize"), "build", str(tmp_path)])
    assert result.returncode != 0, output(result)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policy(manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    assert check_manifests(manifests[overlay], HPA[overlay]) == []


def test_policy_rejects_weak_deployments(manifests: dict[str, list[dict[str, Any]]]) -> None:
    docs = copy.deepcopy(manifests["prod"])
    embedder = _find(docs, "Deployment", "embedder")
    container = embedder["spec"]["template"]["spec"]["containers"][0]
    del container["resources"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["env"].append({"name": "OPENAI_API_KEY", "value": "sk-not-a-secret"})
    container["readinessProbe"] = {"tcpSocket": {"port": 50051}}
    chat = _find(docs, "Deployment", "chat")
    chat["spec"]["template"]["spec"]["automountServiceAccountToken"] = True
    chat["spec"]["template"]["spec"]["containers"][0]["image"] = "ragline/chat:latest"
    docs = _without(docs, "HorizontalPodAutoscaler", "retriever")
    docs = _without(docs, "PodDisruptionBudget", "ingest")
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "oops", "namespace": "rag-system"},
        }
    )

    problems = "\n".join(check_manifests(docs, HPA["prod"]))
    for expected in [
        "Deployment/embedder container embedder: missing resources.requests.cpu",
        "Deployment/embedder container embedder: missing resources.limits.memory",
        "Deployment/embedder container embedder: readOnlyRootFilesystem must be true",
        "Deployment/embedder container embedder: OPENAI_API_KEY must come from a Secret",
        "Deployment/embedder: readinessProbe must be a native grpc probe",
        "Deployment/chat: pod automountServiceAccountToken must be false",
        "Deployment/chat container chat: image 'ragline/chat:latest' must be pinned",
        "Deployment/retriever: no HorizontalPodAutoscaler",
        "Deployment/ingest: no PodDisruptionBudget",
        "Secret/oops: Secrets are created out of band",
    ]:
        assert expected in problems, problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_paths(manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = manifests[overlay]
    stores = DEV_STORES if overlay == "dev" else set()
    # As shipped: the call graph plus the health mesh (see networkpolicy-health-mesh.yaml).
    assert allowed_edges(docs) == CALL_GRAPH | HEALTH_MESH | stores
    # Without the health mesh, exactly the call graph.
    strict = _without(docs, "NetworkPolicy", "health-mesh")
    assert allowed_edges(strict) == CALL_GRAPH | stores


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_only_from_monitoring(
    manifests: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = manifests[overlay]
    in_cluster = pods(docs)
    prometheus = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
    stranger = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="default")
    for app, port in METRICS_PORTS.items():
        assert can_reach(docs, prometheus, in_cluster[app], port), app
        assert not can_reach(docs, stranger, in_cluster[app], port), app
        assert not can_reach(docs, in_cluster["envoy"], in_cluster[app], port), app
    # The gateway is the public entry point: anyone reaches :8000, nothing else; its
    # metrics port only Prometheus.
    assert can_reach(docs, stranger, in_cluster["envoy"], 8000)
    assert can_reach(docs, prometheus, in_cluster["envoy"], GATEWAY_METRICS_PORT)
    assert not can_reach(docs, stranger, in_cluster["envoy"], GATEWAY_METRICS_PORT)
    for app, port in SERVICES.items():
        assert not can_reach(docs, stranger, in_cluster[app], port), app


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_outside_the_namespace(
    manifests: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = manifests[overlay]
    stores = {53, 27017, 6379}
    for c in components.SERVICES:
        expected = stores | ({443} if c.provider_egress else set())
        assert egress_ports_anywhere(docs, c.name) == expected, c.name
    assert egress_ports_anywhere(docs, "envoy") == {53}
    assert egress_ports_anywhere(docs, "ratelimit") == {53, 6379}


def test_network_check_detects_a_missing_policy(manifests: dict[str, list[dict[str, Any]]]) -> None:
    docs = _without(manifests["prod"], "NetworkPolicy", "envoy")
    edges = allowed_edges(docs)
    assert ("envoy", "embedder", 50051) not in edges
    assert edges != CALL_GRAPH | HEALTH_MESH


def test_service_monitors_and_rules(manifests: dict[str, list[dict[str, Any]]]) -> None:
    docs = manifests["prod"]
    services = _find(docs, "ServiceMonitor", "ragline-services")
    assert services["spec"]["endpoints"][0]["port"] == "metrics"
    assert services["spec"]["endpoints"][0]["relabelings"][0]["replacement"] == "ragline-$1"
    gateway = _find(docs, "ServiceMonitor", "ragline-gateway")
    assert gateway["spec"]["endpoints"][0]["path"] == "/metrics"
    assert gateway["spec"]["endpoints"][0]["port"] == "metrics"
    # Only the ClusterIP Services carry the metrics port: the headless twins are not scraped,
    # and the gateway's public Service has none (envoy-metrics is its scrape target).
    scraped = {*SERVICES, "envoy-metrics"}
    for svc in (d for d in docs if d["kind"] == "Service"):
        has_metrics = any(p["name"] == "metrics" for p in svc["spec"]["ports"])
        assert has_metrics == (svc["metadata"]["name"] in scraped), svc["metadata"]["name"]
    public = _find(docs, "Service", "envoy")
    assert [p["port"] for p in public["spec"]["ports"]] == [8000]
    internal = _find(docs, "Service", "envoy-metrics")
    assert [p["port"] for p in internal["spec"]["ports"]] == [GATEWAY_METRICS_PORT]
    rule = _find(docs, "PrometheusRule", "ragline")
    alerts = yaml.safe_load((ROOT / "monitoring/prometheus/alerts.yml").read_text())
    assert rule["spec"] == alerts


# --- checkov: once per overlay (it is the slow one) -------------------------------------------


def _checkov(target: Path) -> tuple[int, dict[str, Any]]:
    result = run(
        [tool("checkov"), "--config-file", str(CHECKOV_CONFIG), "-f", str(target), "-o", "json"]
    )
    assert result.stdout.strip(), output(result)
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework
        report = next(r for r in report if r.get("check_type") == "kubernetes")
    return result.returncode, report


@pytest.fixture(scope="module")
def checkov_reports(rendered_files: dict[str, Path]) -> dict[str, tuple[int, dict[str, Any]]]:
    return {overlay: _checkov(path) for overlay, path in rendered_files.items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov(checkov_reports: dict[str, tuple[int, dict[str, Any]]], overlay: str) -> None:
    code, report = checkov_reports[overlay]
    failed = [
        (c["check_id"], c["check_name"], c["resource"]) for c in report["results"]["failed_checks"]
    ]
    assert failed == [], json.dumps(failed, indent=1)
    assert code == 0
    assert report["summary"]["passed"] > 100  # it really scanned the workloads


def test_checkov_skips_are_explained() -> None:
    config = yaml.safe_load(CHECKOV_CONFIG.read_text())
    text = CHECKOV_CONFIG.read_text()
    for check in config["skip-check"]:
        # Each skipped check is preceded by a comment naming it and giving the reason.
        assert f"# {check} " in text, f"{check} is skipped without a reason"


def test_checkov_flags_an_insecure_deployment(tmp_path: Path) -> None:
    bad = tmp_path / "insecure.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "insecure", "namespace": "rag-system"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "x",
                                    "image": "x:1",
                                    "securityContext": {"privileged": True},
                                }
                            ]
                        },
                    },
                },
            }
        )
    )
    code, report = _checkov(bad)
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert code != 0
    # privileged, no resources, no probes, root allowed
    assert {"CKV_K8S_16", "CKV_K8S_11", "CKV_K8S_8", "CKV_K8S_23"} <= failed, failed


def test_rendered_overlays_differ_where_intended(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    dev, prod = manifests["dev"], manifests["prod"]
    assert {d["metadata"]["name"] for d in dev if d["kind"] == "Deployment"} - {
        d["metadata"]["name"] for d in prod if d["kind"] == "Deployment"
    } == {"mongo", "redis"}
    image = _find(prod, "Deployment", "embedder")["spec"]["template"]["spec"]["containers"][0]
    assert image["image"].startswith("ghcr.io/")
    config = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in prod if d["kind"] == "ConfigMap"}
    assert config["ragline-config"]["data"]["ENABLE_REFLECTION"] == "false"
    envoy_config = load_docs(config["envoy-config"]["data"]["envoy.yaml"])[0]
    assert envoy_config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


def _container_env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_production_runs_mutual_tls_to_every_service(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    """Prod: every service and Envoy mount their own certificate Secret, the services turn
    mutual TLS on and probe a plaintext health-only port, and the gateway config carries a
    client certificate pinned to each upstream's workload. Dev stays plaintext."""
    dev, prod = manifests["dev"], manifests["prod"]
    for c in components.SERVICES:
        deployment = _find(prod, "Deployment", c.name)
        pod = deployment["spec"]["template"]["spec"]
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert f"ragline-{c.name}-tls" in secrets, c.name
        env = _container_env(deployment)
        assert env["INTERNAL_TLS_DIR"] == "/etc/ragline/tls"
        health_port = int(env["HEALTH_ADDR"].rpartition(":")[2])
        container = pod["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health_port, (c.name, probe)
        assert "INTERNAL_TLS_DIR" not in _container_env(_find(dev, "Deployment", c.name))
    envoy_pod = _find(prod, "Deployment", "envoy")["spec"]["template"]["spec"]
    assert any(
        v.get("secret", {}).get("secretName") == "ragline-gateway-tls" for v in envoy_pod["volumes"]
    )
    config = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in prod if d["kind"] == "ConfigMap"}
    gateway = load_docs(config["envoy-config"]["data"]["envoy.yaml"])[0]
    clusters = {c["name"]: c for c in gateway["static_resources"]["clusters"]}
    for c in components.SERVICES:
        context = clusters[c.name]["transport_socket"]["typed_config"]["common_tls_context"]
        pinned = context["validation_context"]["match_typed_subject_alt_names"]
        assert pinned == [{"san_type": "URI", "matcher": {"exact": f"spiffe://ragline/{c.name}"}}]
        assert context["tls_certificates"][0]["certificate_chain"]["filename"].startswith(
            "/etc/ragline/tls/"
        )
    dev_config = {
        d["metadata"]["name"].rsplit("-", 1)[0]: d for d in dev if d["kind"] == "ConfigMap"
    }
    assert "transport_socket" not in dev_config["envoy-config"]["data"]["envoy.yaml"]

"""Every service of the component list (ragline_stack.components) in every deployment
artifact: a Dockerfile target, a compose service, Kubernetes objects and NetworkPolicies,
an Envoy cluster at its headless name, a Prometheus job and a CI image.

`check_artifacts` returns one readable line per thing missing, so a service added to the
list names each file still to change (tests/deploy/test_components.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from ragline_stack import components
from ragline_stack.components import Component

from . import policy
from .tools import ROOT, load_docs

SERVICE_DOCKERFILE = ROOT / "docker" / "service.Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENVOY_CONFIG = ROOT / "k8s" / "base" / "envoy" / "envoy.yaml"
PROMETHEUS = ROOT / "monitoring" / "prometheus" / "prometheus.yml"
CI = ROOT / ".github" / "workflows" / "ci.yml"


@dataclass(frozen=True)
class Artifacts:
    """The deployment files, read once: the Dockerfile's stages (name -> instructions, with
    the stage each builds on), the compose file, the rendered overlay, Envoy's config."""

    stages: dict[str, tuple[str, list[tuple[str, str]]]]
    compose: dict[str, Any]
    manifests: list[dict[str, Any]]
    envoy: dict[str, Any]
    prometheus: dict[str, Any]
    ci: dict[str, Any]


def parse_stages(text: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Dockerfile stages: name -> (base, [(INSTRUCTION, arguments)]), continuations joined."""
    lines = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in re.sub(r"\\\n\s*", " ", lines).splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            current = []
            stages[name] = (parts[0], current)
        elif current is not None and keyword:
            current.append((keyword.upper(), rest.strip()))
    return stages


def stage_values(
    stages: dict[str, tuple[str, list[tuple[str, str]]]], target: str, keyword: str
) -> list[str]:
    """Every value of an instruction in a target and the stages it builds on (base first)."""
    chain: list[list[tuple[str, str]]] = []
    name: str | None = target
    while name in stages:
        base, instructions = stages[name]
        chain.insert(0, instructions)
        name = base
    return [value for instructions in chain for k, value in instructions if k == keyword]


def read_artifacts(manifests: list[dict[str, Any]]) -> Artifacts:
    return Artifacts(
        stages=parse_stages(SERVICE_DOCKERFILE.read_text()),
        compose=yaml.safe_load(COMPOSE.read_text()),
        manifests=manifests,
        envoy=load_docs(ENVOY_CONFIG.read_text())[0],
        prometheus=yaml.safe_load(PROMETHEUS.read_text()),
        ci=yaml.safe_load(CI.read_text()),
    )


def check_artifacts(
    found: Artifacts, services: tuple[Component, ...] = components.SERVICES
) -> list[str]:
    problems: list[str] = []
    for c in services:
        problems += _dockerfile(found, c)
        problems += _compose(found, c, services)
        problems += _kubernetes(found, c, services)
        problems += _envoy(found, c)
        problems += _monitoring_and_ci(found, c)
    problems += _network(found, services)
    return problems


def _dockerfile(found: Artifacts, c: Component) -> list[str]:
    where = f"docker/service.Dockerfile target {c.name}"
    if c.name not in found.stages:
        return [f"{where}: missing (FROM runtime AS {c.name})"]
    env = " ".join(stage_values(found.stages, c.name, "ENV"))
    exposed = " ".join(stage_values(found.stages, c.name, "EXPOSE")).split()
    cmd = (stage_values(found.stages, c.name, "CMD") or [""])[-1]
    health = (stage_values(found.stages, c.name, "HEALTHCHECK") or [""])[-1]
    problems = []
    wanted = {f"{c.env_prefix}_ADDR=0.0.0.0:{c.grpc_port}"}
    wanted.add(f"{c.env_prefix}_METRICS_PORT={c.metrics_port}")
    if c.http_port is not None:
        wanted.add(f"{c.env_prefix}_HTTP_ADDR=0.0.0.0:{c.http_port}")
    problems += [f"{where}: ENV {w} missing" for w in sorted(wanted) if w not in env]
    for port in (*c.serving_ports().values(), c.metrics_port):
        if str(port) not in exposed:
            problems.append(f"{where}: EXPOSE {port} missing")
    if c.module not in cmd:
        problems.append(f"{where}: CMD does not run {c.module}")
    if f"127.0.0.1:{c.grpc_port}" not in health:
        problems.append(f"{where}: HEALTHCHECK does not probe 127.0.0.1:{c.grpc_port}")
    return problems


def _compose(found: Artifacts, c: Component, services: tuple[Component, ...]) -> list[str]:
    where = f"docker-compose.yml service {c.name}"
    compose_services = found.compose.get("services", {})
    service = compose_services.get(c.name)
    problems = []
    gateway_deps = compose_services.get(components.GATEWAY, {}).get("depends_on", {})
    if c.name not in gateway_deps:
        problems.append(f"docker-compose.yml service envoy: depends_on {c.name} missing")
    if service is None:
        return [f"{where}: missing", *problems]
    if service.get("build", {}).get("target") != c.name:
        problems.append(f"{where}: build.target must be {c.name}")
    env = service.get("environment", {})
    own = {f"{c.env_prefix}_ADDR": f"0.0.0.0:{c.grpc_port}"}
    if c.http_port is not None:
        own[f"{c.env_prefix}_HTTP_ADDR"] = f"0.0.0.0:{c.http_port}"
    for key, value in own.items():
        if env.get(key) != value:
            problems.append(f"{where}: {key} must be {value} (got {env.get(key)!r})")
    others = {o.name for o in services if o.name != c.name} | set(c.calls)
    for other in sorted(others):
        port = components.grpc_port(other, services)
        key, value = f"{other.upper()}_ADDR", f"{other}:{port}"
        if env.get(key) != value:
            problems.append(f"{where}: {key} must be {value} (got {env.get(key)!r})")
    aliases = service.get("networks", {}).get("backend", {}).get("aliases", [])
    if c.headless not in aliases:
        problems.append(f"{where}: network alias {c.headless} missing")
    return problems


def _objects(found: Artifacts) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in found.manifests}


def _kubernetes(found: Artifacts, c: Component, services: tuple[Component, ...]) -> list[str]:
    objects = _objects(found)
    problems = []
    for kind in (
        "Deployment",
        "ServiceAccount",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ):
        if (kind, c.name) not in objects:
            problems.append(f"k8s: {kind}/{c.name} missing")
    for name, ports in (
        (c.name, {**c.serving_ports(), "metrics": c.metrics_port}),
        (c.headless, c.serving_ports()),
    ):
        service = objects.get(("Service", name))
        if service is None:
            if name == c.headless:
                problems.append(f"k8s: Service/{name} missing")
            continue
        have = {p.get("name"): p["port"] for p in service["spec"].get("ports", [])}
        for port_name, port in ports.items():
            if have.get(port_name) != port:
                problems.append(f"k8s: Service/{name} port {port_name!r} must be {port}")
    deployment = objects.get(("Deployment", c.name))
    if deployment is not None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        have = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        for port_name, port in {**c.serving_ports(), "metrics": c.metrics_port}.items():
            if have.get(port_name) != port:
                problems.append(f"k8s: Deployment/{c.name} containerPort {port_name!r} != {port}")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        own = {f"{c.env_prefix}_ADDR": f"0.0.0.0:{c.grpc_port}"}
        if c.http_port is not None:
            own[f"{c.env_prefix}_HTTP_ADDR"] = f"0.0.0.0:{c.http_port}"
        for key, value in own.items():
            if env.get(key) != value:
                problems.append(f"k8s: Deployment/{c.name} env {key} must be {value}")
    config = next(
        (
            d
            for d in found.manifests
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ragline-config")
        ),
        None,
    )
    data = config.get("data", {}) if config else {}
    for name in (c.name, *c.calls):
        key, value = f"{name.upper()}_ADDR", f"{name}:{components.grpc_port(name, services)}"
        if data.get(key) != value:
            problems.append(f"k8s: ragline-config {key} must be {value}")
    return problems


def _network(found: Artifacts, services: tuple[Component, ...]) -> list[str]:
    """Every call of the design is allowed by the NetworkPolicies, and Prometheus reaches
    every metrics port (the strict edges are compared exactly in test_k8s)."""
    docs = found.manifests
    in_cluster = policy.pods(docs)
    problems = []
    for src, dst, port in sorted(components.call_graph(services)):
        if src not in in_cluster or dst not in in_cluster:
            continue  # reported above as a missing Deployment
        if not policy.can_reach(docs, in_cluster[src], in_cluster[dst], port):
            problems.append(f"k8s NetworkPolicy: {src} cannot reach {dst}:{port}")
    prometheus = policy.Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
    for c in services:
        if c.name in in_cluster and not policy.can_reach(
            docs, prometheus, in_cluster[c.name], c.metrics_port
        ):
            problems.append(
                f"k8s NetworkPolicy: Prometheus cannot scrape {c.name}:{c.metrics_port}"
            )
    return problems


def _envoy_endpoints(found: Artifacts, cluster: str) -> list[str]:
    for entry in found.envoy["static_resources"]["clusters"]:
        if entry["name"] == cluster:
            return [
                f"{e['endpoint']['address']['socket_address']['address']}:"
                f"{e['endpoint']['address']['socket_address']['port_value']}"
                for group in entry["load_assignment"]["endpoints"]
                for e in group["lb_endpoints"]
            ]
    return []


def _envoy(found: Artifacts, c: Component) -> list[str]:
    where = "k8s/base/envoy/envoy.yaml"
    problems = []
    wanted = {c.name: f"{c.headless}:{c.grpc_port}"}
    if c.http_port is not None:
        wanted[c.http_cluster] = f"{c.headless}:{c.http_port}"
    for cluster, endpoint in wanted.items():
        if _envoy_endpoints(found, cluster) != [endpoint]:
            problems.append(f"{where}: cluster {cluster} must reach {endpoint}")
    if f"{c.headless}:{c.grpc_port}" not in _envoy_endpoints(found, "system"):
        problems.append(f"{where}: cluster system (health) lacks {c.headless}:{c.grpc_port}")
    return problems


def _monitoring_and_ci(found: Artifacts, c: Component) -> list[str]:
    problems = []
    jobs = {
        job["job_name"]: job for job in found.prometheus.get("scrape_configs", [])
    }  # same job names as the ServiceMonitor's relabelling (ragline-<name>)
    job = jobs.get(f"ragline-{c.name}")
    sd = (job or {}).get("dns_sd_configs", [{}])[0]
    if job is None or sd.get("names") != [c.name] or sd.get("port") != c.metrics_port:
        problems.append(
            f"monitoring/prometheus/prometheus.yml: job ragline-{c.name} on "
            f"{c.name}:{c.metrics_port} missing"
        )
    images = found.ci.get("jobs", {}).get("images", {}).get("strategy", {}).get("matrix", {})
    targets = {entry.get("target") for entry in images.get("include", [])}
    if c.name not in targets:
        problems.append(f".github/workflows/ci.yml: images job does not build {c.name}")
    return problems

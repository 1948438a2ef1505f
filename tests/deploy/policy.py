"""The project's own rules for the rendered Kubernetes manifests (beyond schema and checkov),
and a small NetworkPolicy evaluator to check who can reach whom inside the namespace."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ragline_stack import components

NAMESPACE = "rag-system"
# From the one component list (ragline_stack.components), never a copy of it.
SERVICES = {c.name: c.grpc_port for c in components.SERVICES}
METRICS_PORTS = {c.name: c.metrics_port for c in components.SERVICES}
# Envoy's internal metrics listener (Prometheus only; the public port is 8000).
GATEWAY_METRICS_PORT = components.GATEWAY_METRICS_PORT
SERVICE_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "2", "memory": "4Gi"},
}
# Settings that hold credentials: only ever from a Secret, never a literal value.
SECRET_ENV = frozenset(
    {
        "MONGODB_URI",
        "REDIS_URL",
        "VALID_API_KEYS",
        "OPENAI_API_KEY",
        "VOYAGE_AI_API_KEY",
        "REDIS_AUTH",
        "INTERNAL_TOKEN_KEYS",
        "API_KEY_PEPPER",
        "AUTH_KEY_ENCRYPTION_KEY",
    }
)
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}
)


@dataclass(frozen=True)
class HpaRange:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int = 70


def _name(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"].get("labels", {})
    return labels


def workloads(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d["kind"] in WORKLOAD_KINDS)


def check_manifests(docs: list[dict[str, Any]], hpa: HpaRange) -> list[str]:
    """Every violation of the project's rules, as readable lines (empty: all good)."""
    problems: list[str] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
        if doc["kind"] == "Secret":
            problems.append(f"{_name(doc)}: Secrets are created out of band, never committed")
        if doc["kind"] not in CLUSTER_SCOPED and doc["metadata"].get("namespace") != NAMESPACE:
            problems.append(f"{_name(doc)}: not in namespace {NAMESPACE}")
    accounts = {d["metadata"]["name"] for d in by_kind.get("ServiceAccount", [])}
    for account in by_kind.get("ServiceAccount", []):
        if account.get("automountServiceAccountToken") is not False:
            problems.append(f"{_name(account)}: automountServiceAccountToken must be false")

    for workload in workloads(docs):
        problems += _check_workload(workload, accounts)
        labels = _labels(workload)
        app = labels.get("app.kubernetes.io/name", "")
        # Stores exist only in the dev overlay: one ephemeral replica, nothing to budget.
        component = labels.get("app.kubernetes.io/component")
        if component != "store" and not _selected_by(
            by_kind.get("PodDisruptionBudget", []), labels
        ):
            problems.append(f"{_name(workload)}: no PodDisruptionBudget")
        if component in ("service", "gateway"):
            problems += _check_hpa(workload, by_kind.get("HorizontalPodAutoscaler", []), hpa)
        if app in SERVICES:
            problems += _check_service(workload, app, by_kind.get("Service", []))
    return problems


def _selected_by(selectors: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    return any(selector_matches(d["spec"].get("selector", {}), labels) for d in selectors)


def _check_workload(workload: dict[str, Any], accounts: set[str]) -> list[str]:
    name = _name(workload)
    problems = []
    pod = workload["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: pod automountServiceAccountToken must be false")
    account = pod.get("serviceAccountName")
    if not account or account == "default" or account not in accounts:
        problems.append(f"{name}: needs its own ServiceAccount (got {account!r})")
    pod_sc = pod.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append(f"{name}: pod securityContext.runAsNonRoot must be true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: pod seccompProfile must be RuntimeDefault")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{name}: host namespaces are not allowed")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    component = _labels(workload).get("app.kubernetes.io/component")
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        where = f"{name} container {container['name']}"
        problems += _check_container(
            where, container, volumes, needs_tmp=component in ("service", "gateway", "ratelimit")
        )
        if _labels(workload).get("app.kubernetes.io/name") in SERVICES:
            resources = container.get("resources", {})
            if resources != SERVICE_RESOURCES:
                problems.append(f"{where}: resources must be {SERVICE_RESOURCES}, got {resources}")
    return problems


def _check_container(
    where: str, container: dict[str, Any], volumes: dict[str, Any], needs_tmp: bool
) -> list[str]:
    problems = []
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if "@sha256:" not in image and (not tag or tag == "latest"):
        problems.append(f"{where}: image {image!r} must be pinned by tag or digest")
    resources = container.get("resources", {})
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(section, {}):
                problems.append(f"{where}: missing resources.{section}.{resource}")
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in container:
            problems.append(f"{where}: missing {probe}")
    sc = container.get("securityContext", {})
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem must be true")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged is not allowed")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: capabilities must drop ALL")
    if sc.get("capabilities", {}).get("add"):
        problems.append(f"{where}: no capabilities may be added")
    if needs_tmp:
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
            problems.append(f"{where}: /tmp must be an emptyDir (read-only root filesystem)")
    for env in container.get("env", []):
        from_secret = "value" not in env and "secretKeyRef" in env.get("valueFrom", {})
        if env["name"] in SECRET_ENV and not from_secret:
            problems.append(f"{where}: {env['name']} must come from a Secret (secretKeyRef)")
    return problems


def _check_hpa(workload: dict[str, Any], hpas: list[dict[str, Any]], want: HpaRange) -> list[str]:
    name = _name(workload)
    matching = [
        h
        for h in hpas
        if h["spec"]["scaleTargetRef"]["kind"] == workload["kind"]
        and h["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]
    ]
    if not matching:
        return [f"{name}: no HorizontalPodAutoscaler"]
    spec = matching[0]["spec"]
    problems = []
    if matching[0]["apiVersion"] != "autoscaling/v2":
        problems.append(f"{name}: HPA must be autoscaling/v2")
    if (spec.get("minReplicas"), spec.get("maxReplicas")) != (want.min_replicas, want.max_replicas):
        problems.append(
            f"{name}: HPA replicas {spec.get('minReplicas')}-"
            f"{spec.get('maxReplicas')}, want {want.min_replicas}-{want.max_replicas}"
        )
    cpu = [
        m["resource"]["target"].get("averageUtilization")
        for m in spec.get("metrics", [])
        if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"
    ]
    if cpu != [want.cpu_utilization]:
        problems.append(f"{name}: HPA must target {want.cpu_utilization}% CPU, got {cpu}")
    if "replicas" in workload["spec"]:
        problems.append(f"{name}: replicas is owned by the HPA; leave it out of the manifest")
    return problems


def _check_service(workload: dict[str, Any], app: str, services: list[dict[str, Any]]) -> list[str]:
    name = _name(workload)
    port = SERVICES[app]
    problems = []
    container = workload["spec"]["template"]["spec"]["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("grpc") != port:
        problems.append(f"{name}: container port 'grpc' must be {port}")
    # Under mutual TLS the kubelet (no client certificate) probes the health-only port.
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    probed = port
    if env.get("INTERNAL_TLS_DIR"):
        health = env.get("HEALTH_ADDR", "").rpartition(":")[2]
        probed = int(health) if health.isdigit() else -1
        if ports.get("health") != probed:
            problems.append(f"{name}: mutual TLS needs HEALTH_ADDR and a container port 'health'")
    for probe in ("readinessProbe", "livenessProbe"):
        if container.get(probe, {}).get("grpc", {}).get("port") != probed:
            problems.append(f"{name}: {probe} must be a native grpc probe on {probed}")
    fronting = [
        s
        for s in services
        if selector_matches({"matchLabels": s["spec"].get("selector", {})}, _labels(workload))
    ]
    if not any(
        p.get("name") == "grpc" and p["port"] == port
        for s in fronting
        for p in s["spec"].get("ports", [])
    ):
        problems.append(f"{name}: no Service with a port named 'grpc' on {port}")
    return problems


# --- NetworkPolicy evaluation (pods of one namespace) ----------------------------------------


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels AND matchExpressions; {} matches all)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it: its labels and its namespace's labels."""

    labels: dict[str, str]
    namespace: str = NAMESPACE

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def _peer_matches(peer: dict[str, Any], pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod analysis only
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != NAMESPACE:
        return False  # a bare podSelector means pods of the policy's own namespace
    return selector_matches(peer.get("podSelector", {}), pod.labels)


def _rule_allows(rule: dict[str, Any], peers_key: str, pod: Pod, port: int) -> bool:
    ports = rule.get("ports")
    if ports is not None and not any(p.get("port") in (port, None) for p in ports):
        return False
    peers = rule.get(peers_key)
    return peers is None or any(_peer_matches(peer, pod) for peer in peers)


def _direction_allows(
    policies: list[dict[str, Any]], direction: str, selected: Pod, other: Pod, port: int
) -> bool:
    if selected.namespace != NAMESPACE:
        return True  # policies of other namespaces are not ours to check
    kind, rules_key, peers_key = {
        "Ingress": ("Ingress", "ingress", "from"),
        "Egress": ("Egress", "egress", "to"),
    }[direction]
    applying = [
        p
        for p in policies
        if kind in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"].get("podSelector", {}), selected.labels)
    ]
    if not applying:
        return True  # not isolated in this direction
    return any(
        _rule_allows(rule, peers_key, other, port)
        for p in applying
        for rule in p["spec"].get(rules_key, [])
    )


def can_reach(docs: list[dict[str, Any]], src: Pod, dst: Pod, port: int) -> bool:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    return _direction_allows(policies, "Egress", src, dst, port) and _direction_allows(
        policies, "Ingress", dst, src, port
    )


def pods(docs: list[dict[str, Any]]) -> dict[str, Pod]:
    return {_labels(w)["app.kubernetes.io/name"]: Pod(_labels(w)) for w in workloads(docs)}


def container_ports(docs: list[dict[str, Any]], app: str) -> list[int]:
    workload = next(w for w in workloads(docs) if _labels(w)["app.kubernetes.io/name"] == app)
    return [
        p["containerPort"]
        for c in workload["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    ]


def allowed_edges(docs: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    """(source app, destination app, port) for every container port one pod may reach."""
    all_pods = pods(docs)
    return {
        (src, dst, port)
        for src, src_pod in all_pods.items()
        for dst, dst_pod in all_pods.items()
        for port in container_ports(docs, dst)
        if can_reach(docs, src_pod, dst_pod, port)
    }


def egress_ports_anywhere(docs: list[dict[str, Any]], app: str) -> set[int]:
    """Ports an app may reach on any address (rules with ports and no `to`)."""
    labels = next(
        _labels(w) for w in workloads(docs) if _labels(w).get("app.kubernetes.io/name") == app
    )
    ports = set()
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        spec = policy["spec"]
        if "Egress" not in spec.get("policyTypes", []):
            continue
        if not selector_matches(spec.get("podSelector", {}), labels):
            continue
        for rule in spec.get("egress", []):
            if "to" not in rule:
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports

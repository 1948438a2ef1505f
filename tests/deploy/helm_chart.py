"""The Helm chart (helm/ragline) is generated from the prod overlay, never edited by hand:
kustomize stays the one source, and the chart carries the same objects with the settings an
operator changes in values.yaml (images, replicas and autoscaling, resources, the Secret's
name, the Prometheus Operator objects).

    .venv/bin/python -m tests.deploy.helm_chart          # exit 1 if the chart is stale
    .venv/bin/python -m tests.deploy.helm_chart --write  # rewrite it

tests/deploy/test_helm.py checks it is current, `helm lint`, `helm template` against the
Kubernetes schemas and the project policy, and that it renders what kustomize does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from ragline_stack import components

from .tools import ROOT, dump_docs, kustomize_build, load_docs

CHART = ROOT / "helm" / "ragline"
OVERLAY = ROOT / "k8s" / "overlays" / "prod"
SECRET = "ragline-secrets"
MONITORING_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})
HEADER = (
    "# GENERATED from k8s/overlays/prod by tests/deploy/helm_chart.py: edit the kustomize\n"
    "# files, then run `.venv/bin/python -m tests.deploy.helm_chart --write`.\n"
)


def _values(docs: list[dict[str, Any]]) -> dict[str, Any]:
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")["spec"]
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "embedder"
    )
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    ratelimit = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ratelimit"
    )
    return {
        "image": {
            # <registry>/ragline-<component>:<tag>; the tag defaults to the chart's appVersion.
            "registry": image.rsplit("/", 1)[0],
            "tag": "",
        },
        "autoscaling": {
            "minReplicas": hpa["minReplicas"],
            "maxReplicas": hpa["maxReplicas"],
            "targetCPUUtilizationPercentage": hpa["metrics"][0]["resource"]["target"][
                "averageUtilization"
            ],
        },
        "resources": deployment["spec"]["template"]["spec"]["containers"][0]["resources"],
        "ratelimit": {"replicas": ratelimit["spec"]["replicas"]},
        # Created out of band (docs/deployment.md lists its keys); never by the chart.
        "secretName": SECRET,
        # ServiceMonitors and the PrometheusRule (needs the Prometheus Operator's CRDs).
        "monitoring": {"enabled": True},
    }


def _placeholders(docs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """Marks, in place, every spot a value goes (replaced by template text after dumping)."""
    ours = {f"{values['image']['registry']}/ragline-{n}" for n in (*components.names(), "envoy")}
    for doc in docs:
        doc["metadata"].pop("namespace", None)
        spec = doc.get("spec", {})
        if doc["kind"] == "HorizontalPodAutoscaler":
            spec["minReplicas"] = "__HPA_MIN__"
            spec["maxReplicas"] = "__HPA_MAX__"
            spec["metrics"][0]["resource"]["target"]["averageUtilization"] = "__HPA_CPU__"
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "ratelimit":
            spec["replicas"] = "__RATELIMIT_REPLICAS__"
        if doc["kind"] != "Deployment":
            continue
        for container in spec["template"]["spec"]["containers"]:
            name, _, _tag = container["image"].rpartition(":")
            if name in ours:
                container["image"] = f"__IMAGE_{name.rsplit('-', 1)[1]}__"
                if container.get("resources") == values["resources"]:
                    container["resources"] = "__RESOURCES__"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] == SECRET:
                    ref["name"] = "__SECRET__"


def _escape(text: str) -> str:
    """Prometheus' own {{ }} templates (alert annotations) pass through Helm verbatim."""
    return (
        text.replace("{{", "\x00")
        .replace("}}", "\x01")
        .replace("\x00", '{{ "{{" }}')
        .replace("\x01", '{{ "}}" }}')
    )


def render_chart(kustomized: str) -> dict[Path, str]:
    docs = [d for d in load_docs(kustomized) if d["kind"] != "Namespace"]
    values = _values(docs)
    _placeholders(docs, values)
    core = [d for d in docs if d["kind"] not in MONITORING_KINDS]
    monitoring = [d for d in docs if d["kind"] in MONITORING_KINDS]
    image = (
        "{{ .Values.image.registry }}/ragline-%s:"
        "{{ .Values.image.tag | default .Chart.AppVersion }}"
    )
    substitutions = {
        "__HPA_MIN__": "{{ .Values.autoscaling.minReplicas }}",
        "__HPA_MAX__": "{{ .Values.autoscaling.maxReplicas }}",
        "__HPA_CPU__": "{{ .Values.autoscaling.targetCPUUtilizationPercentage }}",
        "__RATELIMIT_REPLICAS__": "{{ .Values.ratelimit.replicas }}",
        "__SECRET__": "{{ .Values.secretName }}",
        **{f"__IMAGE_{n}__": image % n for n in (*components.names(), "envoy")},
    }

    def template(part: list[dict[str, Any]]) -> str:
        text = _escape(dump_docs(part))
        for marker, expression in substitutions.items():
            text = text.replace(marker, expression)
        lines = []
        for line in text.splitlines():
            if line.endswith("resources: __RESOURCES__"):
                pad = " " * (len(line) - len(line.lstrip()))
                nested = f"{{{{- toYaml .Values.resources | nindent {len(pad) + 2} }}}}"
                line = f"{pad}resources:\n{pad}  {nested}"
            lines.append(line)
        return "\n".join(lines) + "\n"

    project = ROOT / "pyproject.toml"
    version = next(
        line.split('"')[1]
        for line in project.read_text().splitlines()
        if line.startswith("version")
    )
    chart = {
        "apiVersion": "v2",
        "name": "ragline",
        "description": f"ragline: RAG services ({', '.join(components.names())}) behind Envoy",
        "type": "application",
        "version": version,
        "appVersion": version,
    }
    return {
        CHART / "Chart.yaml": HEADER + yaml.safe_dump(chart, sort_keys=False),
        CHART / "values.yaml": HEADER + yaml.safe_dump(values, sort_keys=False),
        CHART / "templates" / "ragline.yaml": HEADER + template(core),
        CHART / "templates" / "monitoring.yaml": HEADER
        + "{{- if .Values.monitoring.enabled }}\n"
        + template(monitoring)
        + "{{- end }}\n",
    }


def expected() -> dict[Path, str]:
    return render_chart(kustomize_build(OVERLAY))


def main(argv: list[str]) -> int:
    stale = []
    for path, text in expected().items():
        if path.exists() and path.read_text() == text:
            continue
        if "--write" in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        else:
            stale.append(path)
    for path in stale:
        print(f"out of date: {path.relative_to(ROOT)} (run with --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""helm/ragline: generated from the prod overlay (helm_chart.py), linted by Helm v4, and
rendering the same objects kustomize does, valid against the Kubernetes schemas and the
project policy; values change what they say."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

from . import helm_chart
from .policy import HpaRange, check_manifests
from .tools import CRD_KINDS, GO_BIN, KUBERNETES_VERSION, dump_docs, load_docs, output, run, tool

RELEASE_NAMESPACE = "rag-system"


def _helm() -> str:
    # Helm v4 from the Go module proxy: GOBIN=.bin go install helm.sh/helm/v4/cmd/helm@v4.3.2
    found = GO_BIN / "helm"
    if found.is_file() and os.access(found, os.X_OK):
        return str(found)
    return shutil.which("helm") or tool("helm")


def _template(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    result = run(
        [_helm(), "template", "ragline", str(helm_chart.CHART), "-n", RELEASE_NAMESPACE, *args],
        env={"HELM_CACHE_HOME": str(tmp_path / "cache"), "HELM_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, output(result)
    return load_docs(result.stdout)


def _comparable(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects without their namespace (the release's, not the overlay's) in a stable order."""
    out = []
    for doc in copy.deepcopy(docs):
        if doc["kind"] == "Namespace":
            continue
        doc["metadata"].pop("namespace", None)
        out.append(doc)
    return sorted(out, key=lambda d: (d["kind"], d["metadata"]["name"]))


def test_chart_is_generated_from_the_overlay() -> None:
    for path, text in helm_chart.expected().items():
        assert path.read_text() == text, (
            f"{path} is stale: run .venv/bin/python -m tests.deploy.helm_chart --write"
        )


def test_helm_lint(tmp_path: Path) -> None:
    result = run(
        [_helm(), "lint", "--strict", str(helm_chart.CHART)],
        env={"HELM_CACHE_HOME": str(tmp_path / "cache"), "HELM_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, output(result)


def test_defaults_render_what_kustomize_renders(
    manifests: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    assert _comparable(_template(tmp_path)) == _comparable(manifests["prod"])


def test_rendered_chart_is_valid_and_follows_the_policy(tmp_path: Path) -> None:
    docs = _template(tmp_path)
    core = tmp_path / "core.yaml"
    core.write_text(dump_docs([d for d in docs if d["kind"] not in CRD_KINDS]))
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet", str(core)]
    )
    assert result.returncode == 0, output(result)
    # The policy also wants the namespace on every object: helm sets the release's.
    for doc in docs:
        doc["metadata"]["namespace"] = RELEASE_NAMESPACE
    assert check_manifests(docs, HpaRange(2, 10)) == []


def test_values_change_what_they_say(tmp_path: Path) -> None:
    docs = _template(
        tmp_path,
        "--set",
        "image.registry=registry.example/team",
        "--set",
        "image.tag=1.2.3",
        "--set",
        "autoscaling.minReplicas=3",
        "--set",
        "secretName=other-secrets",
        "--set",
        "monitoring.enabled=false",
    )
    kinds = {d["kind"] for d in docs}
    assert not kinds & CRD_KINDS
    chat = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "chat")
    container = chat["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/team/ragline-chat:1.2.3"
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"other-secrets"}
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpas and all(h["spec"]["minReplicas"] == 3 for h in hpas)


def test_helm_lint_rejects_a_broken_chart(tmp_path: Path) -> None:
    chart = tmp_path / "ragline"
    shutil.copytree(helm_chart.CHART, chart)
    (chart / "templates" / "broken.yaml").write_text("kind: {{ .Values.nope.missing }\n")
    result = run(
        [_helm(), "lint", "--strict", str(chart)],
        env={"HELM_CACHE_HOME": str(tmp_path / "cache"), "HELM_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode != 0, output(result)

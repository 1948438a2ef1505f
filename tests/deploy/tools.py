"""Where the deploy validators live and how to run them (installed by
scripts/install-deploy-tools.sh into .venv-tools/ and .bin/, promtool from Debian)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".venv-tools" / "bin"
GO_BIN = ROOT / ".bin"
OVERLAYS = ("dev", "prod")
# Kubernetes version the rendered manifests are validated against.
KUBERNETES_VERSION = "1.33.0"
# Custom resources (Prometheus Operator) have no schema in kubernetes-validate: not validated
# there; tests/deploy/test_k8s.py checks their shape itself.
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})

INSTALL_HINT = "run scripts/install-deploy-tools.sh first"


def tool(name: str) -> str:
    """Absolute path of a validator; fails the test (not skip) when it is missing."""
    for candidate in (TOOLS_BIN / name, GO_BIN / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: {INSTALL_HINT}")


def run(
    args: Sequence[str],
    *,
    cwd: Path = ROOT,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a validator; never raises on a non-zero exit (the caller asserts)."""
    full_env = {**os.environ, "PATH": f"{TOOLS_BIN}:{GO_BIN}:{os.environ.get('PATH', '')}"}
    full_env.update(env or {})
    return subprocess.run(
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def kustomize_build(path: Path) -> str:
    result = run([tool("kustomize"), "build", str(path)])
    assert result.returncode == 0, output(result)
    return result.stdout


def load_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dump_docs(docs: Sequence[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)

"""Files under k8s/ that are derived from others, and how to re-derive them.

    .venv/bin/python tests/deploy/generate.py           # exit 1 and list files that drifted
    .venv/bin/python tests/deploy/generate.py --write   # rewrite them

- k8s/base/envoy/envoy.yaml: `python -m ragline_stack.envoy_config` with the arguments below
  (also baked into the gateway image for docker compose).
- k8s/base/monitoring/prometheusrule.yaml: monitoring/prometheus/alerts.yml wrapped in a
  PrometheusRule, verbatim (comments included), so the two cannot disagree.

tests/deploy/test_generated.py asserts both are current.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from ragline_stack import components

ROOT = Path(__file__).resolve().parents[2]
ENVOY_CONFIG = ROOT / "k8s/base/envoy/envoy.yaml"
ALERTS = ROOT / "monitoring/prometheus/alerts.yml"
PROMETHEUS_RULE = ROOT / "k8s/base/monitoring/prometheusrule.yaml"

# Envoy reaches each service through its headless Service (every pod's address, so requests
# are balanced per request and health-checked per pod); in docker compose these names are
# network aliases of the service containers. One argument per service of the component list.
ENVOY_ARGS: tuple[str, ...] = (
    "--listen-host",
    "0.0.0.0",
    "--descriptor",
    "/etc/envoy/ragline.binpb",
    *(arg for c in components.SERVICES for arg in (f"--{c.name}", f"{c.headless}:{c.grpc_port}")),
    *(
        arg
        for c in components.SERVICES
        if c.http_port is not None
        for arg in (f"--{c.name}-http", f"{c.headless}:{c.http_port}")
    ),
)

_RULE_HEADER = """\
# GENERATED from monitoring/prometheus/alerts.yml by tests/deploy/generate.py: edit that file,
# then run `.venv/bin/python tests/deploy/generate.py --write`. tests/deploy checks they match.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ragline
  labels:
    app.kubernetes.io/part-of: ragline
    # Match your Prometheus' ruleSelector (kube-prometheus-stack: release=<helm release>).
    prometheus: ragline
spec:
"""


def envoy_config_text(python: str = sys.executable) -> str:
    """The gateway config as the renderer produces it today."""
    result = subprocess.run(
        [python, "-m", "ragline_stack.envoy_config", *ENVOY_ARGS],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return result.stdout


def prometheus_rule_text() -> str:
    """alerts.yml from its `groups:` line on, indented under `spec:` of a PrometheusRule."""
    lines = ALERTS.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    return _RULE_HEADER + textwrap.indent("".join(lines[start:]), "  ")


def expected() -> dict[Path, str]:
    return {ENVOY_CONFIG: envoy_config_text(), PROMETHEUS_RULE: prometheus_rule_text()}


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str]) -> int:
    write = "--write" in argv
    stale = []
    for path, text in expected().items():
        if path.exists() and path.read_text() == text:
            continue
        if write:
            path.write_text(text)
            print(f"wrote {_show(path)}")
        else:
            stale.append(path)
    for path in stale:
        print(f"out of date: {_show(path)} (run with --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

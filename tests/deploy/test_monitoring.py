"""monitoring/: alert rules (promtool check + unit tests), the Prometheus config for compose,
the Grafana dashboard, and the metric names both of them use."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .metric_names import (
    ALERTS,
    DASHBOARD,
    EXPORTED,
    KNOWN,
    LATER,
    alert_expressions,
    dashboard_expressions,
    metric_names_used,
    promql_metric_names,
)
from .tools import ROOT, output, run, tool

PROM_DIR = ROOT / "monitoring" / "prometheus"
OBSERVABILITY_DOC = ROOT / "docs" / "observability.md"

# The alerts users expect, and the threshold each must compare against.
REQUIRED_ALERTS = {
    "RaglineHighErrorRate": ") > 0.05",
    "RaglineHighLatency": ") > 2",
    "RaglineHighCost": ") > 50",
    "RaglineLowCacheHitRate": ") < 0.30",
    "RaglineServiceDown": "== 0",
}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    result = run([tool("promtool"), "check", "rules", str(ALERTS)])
    assert result.returncode == 0, output(result)


def test_promtool_unit_tests() -> None:
    result = run([tool("promtool"), "test", "rules", str(PROM_DIR / "alerts_test.yml")])
    assert result.returncode == 0, output(result)


def test_promtool_check_config() -> None:
    result = run([tool("promtool"), "check", "config", str(PROM_DIR / "prometheus.yml")])
    assert result.returncode == 0, output(result)


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yml"
    broken.write_text(
        ALERTS.read_text().replace(
            "sum(increase(ragline_cost_usd_total[1h])) > 50",
            "sum(increase(ragline_cost_usd_total[1h]) > 50",
        )
    )
    assert broken.read_text() != ALERTS.read_text()
    result = run([tool("promtool"), "check", "rules", str(broken)])
    assert result.returncode != 0, output(result)


def test_promtool_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a cost alert at $70/hour no longer fires on $60."""
    shutil.copy(PROM_DIR / "alerts_test.yml", tmp_path / "alerts_test.yml")
    (tmp_path / "alerts.yml").write_text(
        ALERTS.read_text().replace(
            "sum(increase(ragline_cost_usd_total[1h])) > 50",
            "sum(increase(ragline_cost_usd_total[1h])) > 70",
        )
    )
    result = run([tool("promtool"), "test", "rules", str(tmp_path / "alerts_test.yml")])
    assert result.returncode != 0, output(result)
    assert "RaglineHighCost" in result.stdout + result.stderr


def test_required_alerts_and_thresholds() -> None:
    rules = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    for name, threshold in REQUIRED_ALERTS.items():
        assert name in rules, name
        assert threshold in " ".join(rules[name]["expr"].split()), (name, rules[name]["expr"])


def test_every_alert_has_labels_annotations_and_a_runbook() -> None:
    doc = OBSERVABILITY_DOC.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", doc, flags=re.MULTILINE)
    }
    for rule in _rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= annotations.keys(), name
        anchor = annotations["runbook"].rsplit("#", 1)[-1]
        assert anchor == name.lower(), (name, anchor)
        assert anchor in anchors, f"docs/observability.md has no section for {name}"


def test_every_alert_is_unit_tested_both_ways() -> None:
    """Each alert has a case where it fires and one where it must stay quiet."""
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names <= fires, names - fires
    assert names <= quiet, names - quiet


def test_metric_names_are_known() -> None:
    used = metric_names_used()
    assert used - KNOWN == set(), f"unknown metric names: {sorted(used - KNOWN)}"


def test_dashboard_covers_every_exported_family() -> None:
    used = set()
    for expr in dashboard_expressions():
        used |= promql_metric_names(expr)
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in EXPORTED | LATER}
    used_families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert families - used_families == set()


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, method) (rate(ragline_rpc_duration_seconds_"
        'bucket{service=~"$service", method!~"/grpc[.].*"}[$__rate_interval])))'
        " / on (service) group_left(code) sum without (instance) (up offset 5m) * 1e3"
        " and ignoring(job) ragline_rpc_request_total > bool 2"
    )
    assert promql_metric_names(expr) == {
        "ragline_rpc_duration_seconds_bucket",
        "up",
        "ragline_rpc_request_total",
    }
    # A typo is caught by the known-names check.
    assert "ragline_rpc_request_total" not in KNOWN
    assert alert_expressions({"groups": [{"rules": [{"alert": "X", "expr": "foo > 1"}]}]}) == [
        "foo > 1"
    ]


def _dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def test_dashboard_structure() -> None:
    board = _dashboard()
    assert board["uid"] == "ragline-overview"
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "Overview",
        "Traffic",
        "Latency",
        "Errors",
        "Tokens and cost",
        "Caches",
        "Ingest and index",
        "Resources",
    ]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "service"} <= variables
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
            assert target["expr"].count("{") == target["expr"].count("}"), target["expr"]


@pytest.mark.parametrize("title_part", ["p50", "p95", "p99"])
def test_dashboard_latency_percentiles_per_endpoint(title_part: str) -> None:
    panels = [p for p in _dashboard()["panels"] if p["title"] == f"{title_part} by endpoint"]
    assert len(panels) == 1
    assert "sum by (method, le)" in panels[0]["targets"][0]["expr"]


def test_grafana_provisioning_parses() -> None:
    base = ROOT / "monitoring" / "grafana" / "provisioning"
    datasources = yaml.safe_load((base / "datasources" / "prometheus.yaml").read_text())
    assert datasources["datasources"][0]["type"] == "prometheus"
    dashboards = yaml.safe_load((base / "dashboards" / "ragline.yaml").read_text())
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"

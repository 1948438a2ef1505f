"""Metric names used by the Grafana dashboard and the alert rules, and the names they may use.

`metric_names_used()` is the set a live-scrape test compares with what the services really
export; `EXPORTED`, `LATER`, `ENVOY` and `BUILTIN` are the names known today.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "ragline.json"
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"


def _histogram(name: str) -> set[str]:
    return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}


# What the services export today (ragline_core.metrics, prometheus_client).
EXPORTED: frozenset[str] = frozenset(
    {
        "ragline_rpc_requests_total",
        *_histogram("ragline_rpc_duration_seconds"),
        "ragline_cache_requests_total",
        "ragline_provider_requests_total",
        *_histogram("ragline_provider_duration_seconds"),
        "ragline_tokens_total",
        "ragline_cost_usd_total",
        "ragline_embedded_texts_total",
        "ragline_chat_relevance_gate_total",
        "ragline_ingest_documents_total",
        "ragline_ingest_chunks_total",
        "ragline_ingest_jobs_total",
        *_histogram("ragline_ingest_job_duration_seconds"),
        "ragline_index_chunks",
        "ragline_index_chunk_ids_checksum",
        "ragline_index_gap_chunks",
        "ragline_index_version_lag",
        "ragline_index_repairs_total",
    }
)

# Names the dashboard may use before any service exports them (none today).
LATER: frozenset[str] = frozenset()
LATER_REASON = "every used metric is exported (tests/e2e/test_metrics_live.py)"

# Envoy's own stats (GET /metrics on the gateway) that the dashboard and alerts use.
ENVOY: frozenset[str] = frozenset(
    {
        "envoy_http_downstream_rq_xx",
        *_histogram("envoy_http_downstream_rq_time"),
        "envoy_cluster_upstream_rq_total",
        *_histogram("envoy_cluster_upstream_rq_time"),
    }
)

# Prometheus' own series and prometheus_client's process collector.
BUILTIN: frozenset[str] = frozenset(
    {
        "up",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
)

KNOWN: frozenset[str] = EXPORTED | LATER | ENVOY | BUILTIN

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions, keywords, labels and strings removed)."""
    text = _GRAFANA_VAR.sub("0", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(dashboard: dict[str, Any] | None = None) -> list[str]:
    """PromQL of every panel target of the dashboard."""
    board = dashboard if dashboard is not None else json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in _panels(board.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_variable_metrics(dashboard: dict[str, Any] | None = None) -> set[str]:
    """Metrics named by the dashboard's query variables (label_values(metric, label))."""
    board = dashboard if dashboard is not None else json.loads(DASHBOARD.read_text())
    names = set()
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        names.update(_LABEL_VALUES.findall(text))
    return names


def alert_expressions(rules: dict[str, Any] | None = None) -> list[str]:
    """PromQL of every alerting and recording rule."""
    doc = rules if rules is not None else yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def metric_names_used() -> set[str]:
    """Every metric name the dashboard and the alert rules query."""
    names = dashboard_variable_metrics()
    for expr in [*dashboard_expressions(), *alert_expressions()]:
        names |= promql_metric_names(expr)
    return names

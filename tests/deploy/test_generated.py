"""Derived files are current (see generate.py), and the committed Envoy config loads in the
Envoy 1.40 the project ships."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from . import generate
from .tools import ROOT, output, run

DESCRIPTOR = ROOT / "gen" / "ragline.binpb"
ENVOY = Path(sys.executable).parent / "envoy"


def test_envoy_config_is_rendered_from_the_template() -> None:
    assert generate.ENVOY_CONFIG.read_text() == generate.envoy_config_text(), (
        "k8s/base/envoy/envoy.yaml is stale: run .venv/bin/python tests/deploy/generate.py --write"
    )


def test_prometheus_rule_matches_alerts() -> None:
    assert generate.PROMETHEUS_RULE.read_text() == generate.prometheus_rule_text(), (
        "k8s/base/monitoring/prometheusrule.yaml is stale: run .venv/bin/python "
        "tests/deploy/generate.py --write"
    )


def test_generate_check_mode_reports_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text("old\n")
    monkeypatch.setattr(generate, "expected", lambda: {stale: "new\n"})
    assert generate.main([]) == 1
    assert stale.read_text() == "old\n"
    assert generate.main(["--write"]) == 0
    assert stale.read_text() == "new\n"


def test_committed_envoy_config_validates(tmp_path: Path) -> None:
    """`envoy --mode validate` on the committed config, with the local descriptor set in
    place of the image's /etc/envoy/ragline.binpb."""
    if not DESCRIPTOR.is_file():
        pytest.skip("gen/ragline.binpb not built (scripts/gen_protos.sh)")
    if not os.access(ENVOY, os.X_OK):
        pytest.skip("envoy is not installed in the project venv")
    config = generate.ENVOY_CONFIG.read_text()
    assert "/etc/envoy/ragline.binpb" in config
    local = tmp_path / "envoy.yaml"
    local.write_text(config.replace("/etc/envoy/ragline.binpb", str(DESCRIPTOR)))
    result = run(
        [
            str(ENVOY),
            "--mode",
            "validate",
            "-c",
            str(local),
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ],
        timeout=120,
    )
    assert result.returncode == 0, output(result)
    assert "OK" in result.stdout + result.stderr

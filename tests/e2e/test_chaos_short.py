"""The fault battery's short profile (chaos/, docs/reliability.md) as part of the suite: it
starts its own stack, injects every scenario's fault under load and fails on any violated
invariant (data, requests, accounting). `make chaos` runs the same and updates the doc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ragline_stack.stack import ROOT

pytestmark = pytest.mark.e2e

# The short profile takes ~5 min on 2 shared cores; far past that it is stuck.
TIMEOUT_S = 1200


def test_short_fault_battery_keeps_every_invariant():
    run = subprocess.run(
        [sys.executable, "-m", "chaos", "--profile", "short", "--no-doc"],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    report = run.stdout[run.stdout.find("chaos short:") :]
    assert run.returncode == 0, f"{report}\n--- stderr (last lines) ---\n{run.stderr[-4000:]}"
    assert "VIOLATED" not in report, report

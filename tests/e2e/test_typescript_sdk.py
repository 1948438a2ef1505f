"""The TypeScript SDK in clients/typescript, as a user gets it: its generated types current with
the OpenAPI document, its Node test-runner tests (unit and live) passing against the suite's
stack with none skipped, and its README quick start running as written."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "typescript"


def _run(args: list[str], *, timeout: float = 600, **env: str) -> str:
    proc = subprocess.run(
        args,
        cwd=SDK,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{out[-6000:]}"
    return out


@pytest.fixture(scope="module")
def built() -> None:
    """npm ci when `make test-tools` has not (a fresh clone), then the build of dist/."""
    if not (SDK / "node_modules" / ".installed").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"])
    _run(["npm", "run", "-s", "build"])
    _run(["npm", "run", "-s", "build:test"])


def test_generated_types_are_current(built):
    out = _run(["node", "scripts/check-gen.mjs"])
    assert "is current" in out, out


def _counts(tap: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^# (\w+) (\d+)$", tap, re.M)}


def _failures(tap: str) -> str:
    """Each failed test's TAP block (its name, error and stack), not the whole report."""
    blocks = re.findall(r"^\s*not ok \d+ - .*?(?=^\s*(?:ok|not ok) \d+ - |\Z)", tap, re.M | re.S)
    return "\n".join(b for b in blocks if "type: 'suite'" not in b)[:8000]


def test_sdk_tests_pass_against_the_stack(stack, built):
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "build-test/test/"],
        cwd=SDK,
        env={**os.environ, "RAGLINE_BASE_URL": stack.cfg.base_url, "RAGLINE_API_KEY": DEV_KEY},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    tap = proc.stdout + proc.stderr
    counts = _counts(tap)
    assert proc.returncode == 0 and counts.get("fail") == 0, _failures(tap) or tap[-6000:]
    assert counts.get("cancelled") == 0, tap[-6000:]
    # Ran, not skipped: the environment reached the live tests.
    assert counts.get("skipped") == 0 and counts.get("todo") == 0, tap[-6000:]
    assert counts.get("pass", 0) >= 40, counts
    for name in (
        "a streamed answer: start, deltas, citation, usage, done, as the plain answer",
        "429 with retryAfter once a free key's limit is spent",
        "documents: every page, one with its content, delete",
        "a large ingest replies at once; watching the job shows its progress to the end",
        "429 waits for Retry-After, then succeeds",
    ):
        assert re.search(rf"^\s*ok \d+ - {re.escape(name)}$", tap, re.M), f"not passed: {name}"


def test_readme_quick_start_runs(stack, built):
    """The README's ```js block, saved inside the package (so `@ragline/client` resolves as
    it does for a user who installed it) and run against the suite's stack."""
    text = (SDK / "README.md").read_text()
    blocks = re.findall(r"```js\n(.*?)```", text, re.S)
    assert blocks, "clients/typescript/README.md has no ```js quick start"
    source = blocks[0]
    assert len(source.strip().splitlines()) <= 10, "the quick start is longer than 10 lines"
    script = SDK / f"_quickstart-{uuid.uuid4().hex[:8]}.mjs"
    script.write_text(source)
    try:
        out = _run(
            ["node", script.name],
            timeout=180,
            RAGLINE_BASE_URL=stack.cfg.base_url,
            RAGLINE_API_KEY=DEV_KEY,
        )
    finally:
        script.unlink()
    lines = out.splitlines()
    assert lines[0].startswith("Envoy "), out
    assert "transcodes JSON" in lines[1], out
    assert any(line.startswith("notes: ") for line in lines), out
    assert lines[-1] == "JOB_NOT_FOUND", out


def test_browser_may_send_what_the_sdk_sends(stack):
    """A browser's preflight for the SDK's ingest (Authorization, JSON, Idempotency-Key) is
    allowed, and the SDK can read Retry-After and the request id from a cross-origin reply."""
    reply = httpx.options(
        f"{stack.cfg.base_url}/api/v1/ingest",
        headers={
            "origin": "http://localhost:3000",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, idempotency-key",
        },
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    allowed = {h.strip() for h in reply.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed, allowed
    exposed = {h.strip() for h in reply.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-request-id", "x-ratelimit-limit"} <= exposed, exposed

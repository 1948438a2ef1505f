"""Server reflection through the gateway, as client developers use it: `grpcurl list` and
`describe`, and `buf curl --reflect`, with a key; without one a fast UNAUTHENTICATED. Each
command has a time limit: reflection once hung for minutes (the body buffer waited for the
end of a bidirectional stream)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GRPCURL = ROOT / ".bin" / "grpcurl"
BUF = ROOT / ".venv" / "bin" / "buf"
AUTH = f"authorization: Bearer {DEV_KEY}"


@pytest.fixture(scope="module")
def grpcurl() -> Path:
    if not GRPCURL.exists():
        subprocess.run(["scripts/install_go_tools.sh", "grpcurl"], cwd=ROOT, check=True)
    return GRPCURL


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # A hang fails the test (TimeoutExpired) instead of stalling the suite.
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_grpcurl_lists_every_service_of_the_gateway(stack, grpcurl):
    addr = f"127.0.0.1:{stack.cfg.api_port}"
    out = _run([str(grpcurl), "-plaintext", "-max-time", "20", "-H", AUTH, addr, "list"])
    assert out.returncode == 0, out.stderr
    services = set(out.stdout.split())
    assert {
        "ragline.embedder.v1.EmbedderService",
        "ragline.retriever.v1.RetrieverService",
        "ragline.chat.v1.ChatService",
        "ragline.ingest.v1.IngestService",
        "ragline.auth.v1.AuthService",
    } <= services, out.stdout


def test_grpcurl_describes_a_method_of_another_service(stack, grpcurl):
    addr = f"127.0.0.1:{stack.cfg.api_port}"
    out = _run(
        [str(grpcurl), "-plaintext", "-max-time", "20", "-H", AUTH, addr, "describe",
         "ragline.retriever.v1.SearchRequest"]
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "string query" in out.stdout and "page_size" in out.stdout, out.stdout


def test_reflection_without_a_key_fails_fast(stack, grpcurl):
    addr = f"127.0.0.1:{stack.cfg.api_port}"
    out = _run([str(grpcurl), "-plaintext", "-max-time", "20", addr, "list"])
    assert out.returncode != 0
    assert "Unauthenticated" in out.stderr or "UNAUTHENTICATED" in out.stderr, out.stderr


def test_buf_curl_reflects_and_calls_through_the_gateway(stack):
    url = f"http://127.0.0.1:{stack.cfg.api_port}"
    out = _run(
        [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect",
         # buf sends -H with the call only; reflection needs its own copy of the key.
         "--reflect-header", AUTH, "-H", AUTH, "--timeout", "20s", "-d", "{}",
         f"{url}/ragline.embedder.v1.EmbedderService/ListEmbeddingModels"]
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "all-MiniLM-L6-v2" in out.stdout, out.stdout

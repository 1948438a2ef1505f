"""Fixtures shared by the suite: a real stack (FerretDB, Redis, the services, Envoy) on
free ports in a temporary folder, and wire-level fakes of the paid providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from ragline_stack.stack import Stack, StackConfig, free_port
from tests.support.auth import DEV_KEY, bearer_interceptors
from tests.support.fake_llm import FakeLlm
from tests.support.fake_providers import FakeProvider
from tests.support.identity import TEST_INTERNAL_KEY, identity_channel

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

OPENAI_TEST_KEY = "sk-test-openai-secret-0123456789"
VOYAGE_TEST_KEY = "pa-test-voyage-secret-0123456789"
ANTHROPIC_TEST_KEY = "sk-ant-test-anthropic-secret-0123456789"
# A model name served by the fake OpenAI-compatible server (like a vLLM/Ollama model).
COMPAT_MODEL = "llama-3.1-8b-compat"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeProvider]:
    fake = FakeProvider("openai").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_voyage() -> Iterator[FakeProvider]:
    fake = FakeProvider("voyage").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_chat_openai() -> Iterator[FakeLlm]:
    """OpenAI chat completions (also serves as the OpenAI-compatible server)."""
    fake = FakeLlm("openai").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeLlm]:
    fake = FakeLlm("anthropic").start()
    yield fake
    fake.stop()


def stack_config(run_dir: Path, **env: str) -> StackConfig:
    """A stack on free ports whose services read no .env file."""
    cfg = StackConfig(
        run_dir=run_dir,
        api_port=free_port(),
        admin_port=free_port(),
        mongo_port=free_port(),
        redis_port=free_port(),
        service_ports={s: free_port() for s in ("embedder", "retriever", "chat", "ingest", "auth")},
        metrics_ports={s: free_port() for s in ("embedder", "retriever", "chat", "ingest", "auth")},
        ratelimit_port=free_port(),
        ratelimit_http_port=free_port(),
        ratelimit_debug_port=free_port(),
        chat_http_port=free_port(),
        database="ragline_test",
        request_timeout_s=20.0,
        max_request_bytes=1024 * 1024,
    )
    cfg.service_env = {
        "RAGLINE_ENV_FILE": str(run_dir / "no.env"),
        "LOG_LEVEL": "INFO",
        "INTERNAL_TOKEN_KEYS": TEST_INTERNAL_KEY,
        **env,
    }
    return cfg


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_openai: FakeProvider,
    fake_voyage: FakeProvider,
    fake_chat_openai: FakeLlm,
    fake_anthropic: FakeLlm,
) -> Iterator[Stack]:
    cfg = stack_config(
        tmp_path_factory.mktemp("stack"),
        OPENAI_API_KEY=OPENAI_TEST_KEY,
        OPENAI_BASE_URL=fake_openai.base_url,
        VOYAGE_AI_API_KEY=VOYAGE_TEST_KEY,
        VOYAGE_BASE_URL=fake_voyage.base_url,
        PROVIDER_TIMEOUT="2",
        PROVIDER_MAX_ATTEMPTS="3",
        # Tests that count attempts (test_paid_providers.py) must not depend on how many
        # provider failures earlier tests spent from the retry budget: a bucket of 100
        # outlasts the suite's few. The default (10) is measured by the fault battery's
        # scenario 7 (test_chaos_short.py) and tests/unit/test_errors_and_retry.py.
        PROVIDER_RETRY_BUDGET_TOKENS="100",
        PROVIDER_BACKOFF_BASE="0.05",
        PROVIDER_BACKOFF_MAX="0.2",
        MAX_BATCH_SIZE="100",
        # The suite drives one dev key hard: the top tier keeps global limits out of the way
        # (tests/e2e/test_gateway_* create their own keys to test limits).
        DEV_KEYS_TIER="enterprise",
        # Ingest limits small enough to test under the gateway's 1 MiB body cap.
        MAX_DOCUMENT_CHARS="50000",
        MAX_DOCUMENTS_PER_REQUEST="200",
        # One tenant with a tiny daily cap on paid models (tests/e2e/test_spend_caps.py).
        TENANT_SPEND_CAPS='{"capped-tenant": 0.0000001}',
        # Chat: paid chat APIs are wire-level fakes; fall back to the extractive model.
        CHAT_OPENAI_BASE_URL=fake_chat_openai.base_url,
        ANTHROPIC_API_KEY=ANTHROPIC_TEST_KEY,
        ANTHROPIC_BASE_URL=fake_anthropic.base_url,
        OPENAI_COMPATIBLE_BASE_URL=fake_chat_openai.base_url,
        OPENAI_COMPATIBLE_MODELS=COMPAT_MODEL,
        CHAT_FALLBACK_MODELS="extractive",
        CHAT_KEEPALIVE_SECONDS="1",
    )
    running = Stack(cfg)
    try:
        running.start_all(timeout=300)
    except BaseException:
        _dump_logs(running)
        running.stop_all()
        raise
    yield running
    running.stop_all()


def _dump_logs(stack: Stack) -> None:
    for name in stack.components():
        path = stack.log_path(name)
        if path.exists():
            print(f"--- {name} ---\n" + path.read_text()[-3000:])


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client for the gateway's REST API, with a development key (tenant dev-1)."""
    async with httpx.AsyncClient(
        base_url=stack.cfg.base_url, timeout=60, headers={"authorization": f"Bearer {DEV_KEY}"}
    ) as client:
        yield client


@pytest.fixture
async def anon_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client for the gateway's REST API without credentials."""
    async with httpx.AsyncClient(base_url=stack.cfg.base_url, timeout=60) as client:
        yield client


@pytest.fixture
async def gateway_channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    """Native gRPC through Envoy (same port as REST), with a development key."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.api_port}", interceptors=bearer_interceptors(DEV_KEY)
    ) as channel:
        yield channel


@pytest.fixture
async def anon_channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    """Native gRPC through Envoy without credentials."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.cfg.api_port}") as channel:
        yield channel


@pytest.fixture
async def embedder_channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    """Native gRPC straight to the embedder service (no gateway)."""
    async with identity_channel(stack.cfg.service_addr("embedder")) as channel:
        yield channel

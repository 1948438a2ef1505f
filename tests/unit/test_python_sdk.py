"""The Python SDK (clients/python) without a server: its retry and back-off policy against an
httpx mock transport (Retry-After, jittered back-off, one Idempotency-Key across an ingest's
tries, what is never retried), error decoding, model decoding, that it imports nothing of
the server, and that its committed gRPC stubs are current with the protos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import ragline_client
from ragline_client import (
    Client,
    ConnectionFailedError,
    InvalidArgumentError,
    JobState,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    SearchMode,
    UnavailableError,
)
from ragline_client import _core as core
from ragline_client import client as client_module
from ragline_client.models import Job, SearchResults, Usage, decode

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "python"

SEARCH_REPLY = {
    "hits": [{"chunk_id": "c", "document_id": "d", "title": "t", "text": "x", "score": 0.5}],
    "next_page_token": "",
    "mode": "SEARCH_MODE_HYBRID",
}
JOB = {"job_id": "j1", "collection": "c", "state": "JOB_STATE_SUCCEEDED", "documents_total": 1}


def status(code: int, message: str, reason: str, **extra: Any) -> dict[str, Any]:
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "x"}
    ]
    if "field" in extra:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [{"field": extra["field"], "description": message}],
            }
        )
    return {"code": code, "message": message, "details": details}


class Script:
    """Replies in order; records each request."""

    def __init__(self, *replies: httpx.Response | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", waited.append)
    return waited


def client_for(script: Script, **kwargs: Any) -> Client:
    http = httpx.Client(base_url="http://gw.test", transport=httpx.MockTransport(script))
    return Client("http://gw.test", api_key="k", http_client=http, **kwargs)


def test_ingest_retries_503_with_one_idempotency_key_and_jittered_backoff(sleeps):
    script = Script(
        httpx.Response(503, json=status(14, "the ingest service is unavailable", "UNAVAILABLE")),
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json={"document_ids": ["d"], "job_id": "j1", "job": JOB}),
    )
    policy = RetryPolicy(max_attempts=4, backoff_base=0.5, backoff_max=8)
    result = client_for(script, retry=policy).ingest("c", [{"content": "x"}])
    assert result.job is not None and result.job.state is JobState.SUCCEEDED
    keys = [r.headers.get("idempotency-key") for r in script.requests]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1, keys
    # Full jitter: each wait is random within base * 2^(try-1).
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0, sleeps
    assert script.requests[0].headers["authorization"] == "Bearer k"


def test_each_ingest_call_gets_its_own_key_and_a_given_key_is_kept(sleeps):
    reply = {"document_ids": ["d"], "job_id": "j1", "job": JOB}
    script = Script(*(httpx.Response(200, json=reply) for _ in range(3)))
    client = client_for(script)
    client.ingest("c", [{"content": "x"}])
    client.ingest("c", [{"content": "x"}])
    client.ingest("c", [{"content": "x"}], idempotency_key="mine")
    keys = [r.headers["idempotency-key"] for r in script.requests]
    assert keys[0] != keys[1] and keys[2] == "mine"


def test_429_waits_for_retry_after(sleeps):
    script = Script(
        httpx.Response(
            429, json=status(8, "rate limited", "RATE_LIMITED"), headers={"retry-after": "2"}
        ),
        httpx.Response(200, json=SEARCH_REPLY),
    )
    results = client_for(script).search("q", "c")
    assert results.hits[0].score == 0.5 and results.mode is SearchMode.HYBRID
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.0 + RetryPolicy().backoff_base


def test_a_long_retry_after_is_raised_at_once_with_its_value(sleeps):
    script = Script(
        httpx.Response(
            429, json=status(8, "rate limited", "RATE_LIMITED"), headers={"retry-after": "45"}
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        client_for(script).search("q", "c")
    assert caught.value.retry_after == 45 and caught.value.http_status == 429
    assert caught.value.reason == "RATE_LIMITED" and sleeps == [] and len(script.requests) == 1


def test_gives_up_after_max_attempts(sleeps):
    script = Script(*(httpx.ConnectError("refused") for _ in range(3)))
    with pytest.raises(ConnectionFailedError):
        client_for(script, max_retries=2).search("q", "c")
    assert len(script.requests) == 3 and len(sleeps) == 2


def test_max_retries_zero_turns_retries_off(sleeps):
    script = Script(httpx.Response(503, json=status(14, "down", "UNAVAILABLE")))
    with pytest.raises(UnavailableError):
        client_for(script, max_retries=0).search("q", "c")
    assert len(script.requests) == 1 and sleeps == []


def test_chat_is_retried_only_when_refused_before_any_work(sleeps):
    # A 503 from the chat service may come after the answer was stored: not repeated.
    script = Script(httpx.Response(503, json=status(14, "chat down", "UNAVAILABLE")))
    with pytest.raises(UnavailableError):
        client_for(script).chat("hi")
    assert len(script.requests) == 1
    # The auth service being down refuses the call at the gateway: safe to repeat.
    answer = {"answer": "a", "conversation_id": "c1", "finish_reason": "FINISH_REASON_STOP"}
    script = Script(
        httpx.Response(503, json=status(14, "auth down", "AUTH_UNAVAILABLE")),
        httpx.Response(200, json=answer),
    )
    assert client_for(script).chat("hi").answer == "a"
    assert len(script.requests) == 2


def test_client_errors_are_not_retried_and_carry_their_details(sleeps):
    script = Script(
        httpx.Response(
            400,
            json=status(3, "query must not be empty", "INVALID_ARGUMENT", field="query"),
        ),
        httpx.Response(404, json=status(5, "job 'x' not found", "JOB_NOT_FOUND")),
    )
    client = client_for(script)
    with pytest.raises(InvalidArgumentError) as bad:
        client.search("", "c")
    assert [v.field for v in bad.value.field_violations] == ["query"]
    assert bad.value.code == 3 and bad.value.http_status == 400
    with pytest.raises(NotFoundError) as missing:
        client.get_job("x")
    assert missing.value.reason == "JOB_NOT_FOUND" and "not found" in str(missing.value)
    assert sleeps == [] and len(script.requests) == 2


def test_a_non_json_error_body_still_maps_by_status(sleeps):
    script = Script(httpx.Response(404, text="no route"))
    with pytest.raises(NotFoundError) as caught:
        client_for(script).get_collection("c")
    assert "no route" in caught.value.message


def test_rest_requests_follow_the_bindings(sleeps):
    page1 = {"collections": [{"name": "a"}], "next_page_token": "t2"}
    page2 = {"collections": [{"name": "b"}], "next_page_token": ""}
    script = Script(
        httpx.Response(200, json=page1),
        httpx.Response(200, json=page2),
        httpx.Response(200, json={"document_id": "d", "job_id": "j", "job": JOB}),
    )
    client = client_for(script)
    assert [c.name for c in client.list_collections(page_size=1)] == ["a", "b"]
    assert [str(r.url) for r in script.requests] == [
        "http://gw.test/api/v1/collections?page_size=1",
        "http://gw.test/api/v1/collections?page_size=1&page_token=t2",
    ]
    client.upload_file("my notes", b"%PDF-1.4", filename="a.pdf", title="A")
    upload = script.requests[-1]
    assert upload.url.raw_path.startswith(b"/api/v1/collections/my%20notes/documents:upload?")
    assert dict(upload.url.params) == {"filename": "a.pdf", "title": "A"}
    assert upload.headers["content-type"] == "application/pdf" and upload.content == b"%PDF-1.4"


def test_backoff_is_bounded_and_capped():
    policy = RetryPolicy(max_attempts=10, backoff_base=1, backoff_max=4)
    err = UnavailableError("down")
    for attempt in range(1, 10):
        delay = policy.delay(attempt, err, core.Retry.SAFE)
        assert delay is not None and 0 <= delay <= min(4, 2 ** (attempt - 1))
    assert policy.delay(10, err, core.Retry.SAFE) is None
    assert policy.delay(1, err, core.Retry.REJECTED) is None


def test_models_decode_proto3_json():
    job = decode(
        Job,
        {
            **JOB,
            "state": "JOB_STATE_FROM_THE_FUTURE",
            "create_time": "2026-01-01T12:00:00.123456789Z",
        },
    )
    assert job.state is JobState.UNSPECIFIED  # a newer server's value does not break
    assert job.create_time is not None and job.create_time.microsecond == 123456
    usage = decode(Usage, {"total": {"requests": "259", "cost_usd": 0.5}, "surprise": 1})
    assert usage.total.requests == 259 and usage.total.cost_usd == 0.5
    assert decode(SearchResults, {}).hits == []


def test_the_sdk_imports_nothing_of_the_server():
    code = (
        "import sys, ragline_client, ragline_client._grpc\n"
        "from ragline_client import AsyncClient\n"
        "bad = sorted(m for m in sys.modules if m == 'ragline' or m.startswith('ragline.')"
        " or (m.startswith('ragline_') and not m.startswith('ragline_client'))"
        " or m.split('.')[0] in ('onnxruntime', 'faiss', 'numpy', 'pymongo', 'redis'))\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
    assert ragline_client.__file__.startswith(str(SDK))


def test_committed_grpc_stubs_are_current(tmp_path):
    out = subprocess.run(
        [str(SDK / "scripts" / "gen_stubs.sh"), str(tmp_path / "_proto")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }

    fresh, committed = files(tmp_path / "_proto"), files(SDK / "ragline_client" / "_proto")
    assert fresh
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"stale stubs (run clients/python/scripts/gen_stubs.sh): {stale}"


def test_version_follows_the_api():
    meta = (SDK / "pyproject.toml").read_text()
    assert f'version = "{ragline_client.__version__}"' in meta
    assert ragline_client.__version__.split(".")[0] == ragline_client.API_VERSION.lstrip("v")
    assert json.loads(json.dumps(core.client_headers("k", None)))["user-agent"].endswith(
        ragline_client.__version__
    )


def test_wait_for_job_resumes_a_broken_watch(sleeps):
    running = {**JOB, "state": "JOB_STATE_RUNNING", "documents_done": 0}

    def sse(*jobs: dict[str, Any]) -> bytes:
        return b"".join(b"data: " + json.dumps({"job": j}).encode() + b"\n\n" for j in jobs)

    script = Script(
        # The watch ends (a restarted service) before the job has finished ...
        httpx.Response(200, content=sse(running), headers={"content-type": "text/event-stream"}),
        httpx.Response(200, json=running),  # ... it is still running ...
        httpx.Response(200, content=sse(running, JOB)),  # ... so the watch is resumed.
    )
    seen: list[Job] = []
    final = client_for(script).wait_for_job("j1", on_progress=seen.append)
    assert final.state is JobState.SUCCEEDED
    assert [j.state for j in seen] == [JobState.RUNNING, JobState.RUNNING, JobState.SUCCEEDED]
    assert [r.url.path for r in script.requests] == [
        "/api/v1/jobs/j1:watch",
        "/api/v1/jobs/j1",
        "/api/v1/jobs/j1:watch",
    ]


def test_grpc_status_details_decode_like_rest():
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    from ragline_client import _grpc

    details = []
    for message in (
        error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", domain="ragline.dev"),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="query", description="empty")
            ]
        ),
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)
        ),
    ):
        packed = any_pb2.Any()
        packed.Pack(message)
        details.append(packed)
    status = status_pb2.Status(code=3, message="query must not be empty", details=details)
    err = _grpc._from_metadata(
        3, "query must not be empty", [("grpc-status-details-bin", status.SerializeToString())]
    )
    assert isinstance(err, InvalidArgumentError) and err.reason == "INVALID_ARGUMENT"
    assert [(v.field, v.description) for v in err.field_violations] == [("query", "empty")]
    assert err.retry_after == 2.5 and err.http_status == 0
    # The global limiter's bare RESOURCE_EXHAUSTED over native gRPC: rebuilt from its headers.
    limited = _grpc._from_metadata(
        8, "", [("x-envoy-ratelimited", "true"), ("x-ratelimit-reset", "17")]
    )
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 17 and limited.reason == "RATE_LIMITED" and limited.message
    refused = _grpc._from_metadata(14, "failed to connect to all addresses", [])
    assert isinstance(refused, ConnectionFailedError)


def test_job_progress_does_not_count_unchanged_documents_twice():
    # The server counts unchanged documents inside documents_done.
    job = Job(documents_total=10, documents_done=4, documents_unchanged=3, documents_failed=1)
    assert job.progress == pytest.approx(0.5)

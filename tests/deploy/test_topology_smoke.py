"""Smoke test of the shipped topology: the services docker-compose.yml defines (commands
and environment from the compose file and the images' Dockerfile targets, production
defaults, secrets from the environment) behind the gateway config rendered for Kubernetes
(k8s/base/envoy/envoy.yaml), run as local processes (tests/deploy/topology.py says how and
why), and the seed's requests through it.

It first requires every component of ragline_stack.components in every artifact, so a
service missing from one fails here before anything starts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from ragline_stack import components

from . import artifacts
from .topology import Topology, interpolate

# The first admin key, seeded once as docs/deployment.md tells operators (production mode
# accepts only keys of 32+ characters).
ADMIN_KEY = "rl_live_" + secrets.token_urlsafe(32)
DOCS = [
    {
        "title": "Sourdough bread",
        "content": "Feed the starter flour and water daily. A long cold fermentation gives "
        "sourdough its sour taste and open crumb.",
        "metadata": {"category": "recipe", "year": 2021},
    },
    {
        "title": "Envoy proxy",
        "content": "Envoy transcodes JSON requests to gRPC with the grpc_json_transcoder "
        "filter and a protobuf descriptor set.",
        "metadata": {"category": "tutorial", "year": 2024},
    },
    {
        "title": "Tomato soup",
        "content": "Roast tomatoes with garlic, then blend them with stock and basil for a "
        "smooth soup.",
        "metadata": {"category": "recipe", "year": 2024},
    },
]
TIMEOUT = httpx.Timeout(60.0)


@pytest.fixture(scope="module")
def topology(
    manifests: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    # Every component in every artifact, or nothing to start.
    found = artifacts.read_artifacts(manifests["prod"])
    assert artifacts.check_artifacts(found) == []
    shell_env = {
        "INTERNAL_TOKEN_KEYS": secrets.token_urlsafe(48),
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "AUTH_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        # Bootstrap of the first admin key (compose's default is SEED_DEV_KEYS=false).
        "SEED_DEV_KEYS": "true",
        "VALID_API_KEYS": ADMIN_KEY,
        "MONGODB_DATABASE": "ragline_smoke",
    }
    running = Topology(tmp_path_factory.mktemp("topology"), shell_env)
    try:
        running.build()
        compose_services = {
            name for name, p in running.processes.items() if "ragline_" in " ".join(p.argv)
        }
        assert compose_services == set(components.names())
        running.processes.clear()
        running.start()
        _wait_healthy(running)
    except BaseException:
        print("\n".join(running.logs()))
        running.stop()
        raise
    yield running
    running.stop()


def _wait_healthy(running: Topology, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    status, body = 0, ""
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(running.url("/health"), timeout=5)
            status, body = reply.status_code, reply.text
            if status == 200:
                return
        except httpx.HTTPError as exc:
            body = str(exc)
        time.sleep(0.5)
    raise AssertionError(f"/health not green after {timeout:g}s: {status} {body}")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What one request leaves for the next (the key, the collection)."""
    return {}


@pytest.fixture
def client(topology: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=topology.url(), timeout=TIMEOUT) as c:
        yield c


def test_compose_defaults_are_production(topology: Topology) -> None:
    auth = topology.compose["services"]["auth"]["environment"]
    assert auth["SEED_DEV_KEYS"] == "${SEED_DEV_KEYS:-false}"
    assert topology.processes["auth"].env["ENVIRONMENT"] == "production"
    chat = topology.processes["chat"].env
    assert chat["CHAT_HTTP_ADDR"] == f"{topology.addresses['chat']}:50063"


def test_health(client: httpx.Client) -> None:
    reply = client.get("/health")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    print(json.dumps(body["components"]))
    assert body["status"] == "SERVING"
    for name in ("mongodb", "redis", *components.names()):
        assert body["components"][name] == "SERVING", body


def test_development_keys_are_refused(client: httpx.Client) -> None:
    reply = client.post("/api/v1/embeddings", json={"text": "x"}, headers=_bearer("dev-key-1"))
    assert reply.status_code == 401, reply.text


def test_key_created(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post(
        "/api/v1/keys",
        json={
            "tenant": "smoke",
            "scopes": ["embeddings", "search", "chat", "ingest", "analytics"],
            "name": "smoke test",
        },
        headers=_bearer(ADMIN_KEY),
    )
    assert reply.status_code == 200, reply.text
    state["key"], state["key_id"] = reply.json()["key"], reply.json()["api_key"]["key_id"]
    state["collection"] = f"smoke{secrets.token_hex(4)}"


def test_embeddings(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post("/api/v1/embeddings", json={"text": "hello"}, headers=_bearer(state["key"]))
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "all-MiniLM-L6-v2"
    assert len(reply.json()["embeddings"][0]["values"]) == 384


def test_ingest(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post(
        "/api/v1/ingest",
        json={"documents": DOCS, "collection": state["collection"]},
        headers=_bearer(state["key"]),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    job = body.get("job") or {}
    deadline = time.monotonic() + 60
    while job.get("state") != "JOB_STATE_SUCCEEDED":
        assert job.get("state") != "JOB_STATE_FAILED", job
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        polled = client.get(f"/api/v1/jobs/{body['job_id']}", headers=_bearer(state["key"]))
        job = polled.json()  # GetJob returns the Job itself


def test_search_with_filters_and_rerank(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post(
        "/api/v1/search",
        json={
            "query": "roasted tomatoes soup",
            "collection": state["collection"],
            "filters": {"category": "recipe", "year": {"$gte": 2024}},
            "rerank": True,
        },
        headers=_bearer(state["key"]),
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["reranked"] is True
    assert [h["metadata"]["year"] for h in body["hits"]] == [2024], body
    assert "tomato" in body["hits"][0]["text"].lower()


def test_chat_and_sse(client: httpx.Client, state: dict[str, Any]) -> None:
    question = {"message": "How do I make tomato soup?", "collection": state["collection"]}
    reply = client.post("/api/v1/chat", json=question, headers=_bearer(state["key"]))
    assert reply.status_code == 200, reply.text
    assert "tomato" in json.dumps(reply.json()).lower()
    with client.stream(
        "POST", "/api/v1/chat", json={**question, "stream": True}, headers=_bearer(state["key"])
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[5:]) for line in streamed.iter_lines() if line.startswith("data:")
        ]
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done", kinds


def test_websocket(topology: Topology, state: dict[str, Any]) -> None:
    async def ask() -> list[dict[str, Any]]:
        protocols = ("ragline.chat.v1", f"ragline.bearer.{state['key']}")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                topology.url("/api/v1/chat/ws", scheme="ws"), protocols=protocols
            ) as ws,
        ):
            await ws.send_json(
                {"message": "What does Envoy transcode?", "collection": state["collection"]}
            )
            events: list[dict[str, Any]] = []
            while not events or not ({"done", "error"} & events[-1].keys()):
                events.append(await asyncio.wait_for(ws.receive_json(), 60))
            return events

    events = asyncio.run(ask())
    assert "start" in events[0] and "done" in events[-1], events


def test_openai_chat_completions(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post(
        "/v1/chat/completions",
        json={
            "model": f"extractive@{state['collection']}",
            "messages": [{"role": "user", "content": "What is a long cold fermentation for?"}],
        },
        headers=_bearer(state["key"]),
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]


def test_usage(client: httpx.Client, state: dict[str, Any]) -> None:
    # The gateway batches usage logs (1 s) and the auth service writes them each second.
    deadline = time.monotonic() + 20
    while True:
        reply = client.get("/api/v1/analytics/usage", headers=_bearer(state["key"]))
        assert reply.status_code == 200, reply.text
        if "embeddings" in reply.text or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert reply.json()["tenant"] == "smoke"
    assert "embeddings" in reply.text, reply.text


def test_key_revoked(client: httpx.Client, state: dict[str, Any]) -> None:
    reply = client.post(
        f"/api/v1/keys/{state['key_id']}:revoke", json={}, headers=_bearer(ADMIN_KEY)
    )
    assert reply.status_code == 200, reply.text
    deadline = time.monotonic() + 10
    while True:
        status = client.post(
            "/api/v1/embeddings", json={"text": "x"}, headers=_bearer(state["key"])
        ).status_code
        if status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 401


def test_nothing_crashed(topology: Topology) -> None:
    """Every process of the topology is still the one started (no restart hid a crash)."""
    for name, process in topology.processes.items():
        assert process.proc is not None and process.proc.poll() is None, topology.log(name)
        assert Path(topology.run_dir / f"{name}.log").exists()


# --- the launcher itself, without processes ---------------------------------------------------


def test_interpolation_follows_compose(tmp_path: Path) -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}/${EMPTY-d}/${UNSET}", env) == "v/d/d//"
    with pytest.raises(ValueError, match="compose requires UNSET: make one"):
        interpolate("${UNSET:?make one}", env)


def test_names_resolve_to_each_components_loopback_address(tmp_path: Path) -> None:
    topology = Topology(tmp_path, {})
    auth, mongo = topology.addresses["auth"], topology.addresses["mongo"]
    assert topology.addresses["auth-headless"] == auth
    assert topology.resolve("mongodb://mongo:27017", auth) == f"mongodb://{mongo}:27017"
    assert topology.resolve("0.0.0.0:50055", auth) == f"{auth}:50055"
    envoy_yaml = "address: auth-headless\nport_value: 50055\naddress: 127.0.0.1"
    own = topology.addresses["envoy"]
    assert (
        topology.resolve(envoy_yaml, own) == f"address: {auth}\nport_value: 50055\naddress: {own}"
    )
    # Not a host name: left alone.
    assert topology.resolve("ragline.auth.v1.AuthService", auth) == "ragline.auth.v1.AuthService"


def test_a_service_missing_from_compose_is_not_started(tmp_path: Path) -> None:
    shell_env = {"API_KEY_PEPPER": "p" * 32, "AUTH_KEY_ENCRYPTION_KEY": "k"}
    topology = Topology(tmp_path, shell_env)
    del topology.compose["services"]["auth"]
    topology.build()
    started = {n for n, p in topology.processes.items() if "ragline_" in " ".join(p.argv)}
    assert set(components.names()) - started == {"auth"}

"""Clients generated from the gateway's /openapi.json call the live gateway: Python
(openapi-python-client) and TypeScript (openapi-typescript types, openapi-fetch)."""

from __future__ import annotations

import importlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.auth import DEV_KEY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CONFIG = ROOT / "tests" / "support" / "openapi-python-client.yaml"
TS_CHECK = ROOT / "tools" / "openapi-ts-check"
# Not `ragline_client`: that is the official SDK, already imported by the suite.
GENERATED = "ragline_openapi_generated"


@pytest.fixture(scope="module")
def spec_file(stack, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("openapi") / "openapi.json"
    reply = httpx.get(f"{stack.cfg.base_url}/openapi.json", timeout=10)
    assert reply.status_code == 200
    target.write_bytes(reply.content)
    return target


def _run(args: list[str], cwd: Path, **env: str) -> str:
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env}
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, env=full_env, check=False
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def test_generated_python_client_calls_the_gateway(stack, spec_file, tmp_path, monkeypatch):
    out = _run(
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec_file),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / GENERATED),
            "--config",
            str(CONFIG),
        ],
        tmp_path,
    )
    assert "Warning" not in out and "Unable" not in out, out
    monkeypatch.syspath_prepend(str(tmp_path))
    client_mod = importlib.import_module(GENERATED)
    get_health = importlib.import_module(f"{GENERATED}.api.system_service.get_health")
    upload = importlib.import_module(f"{GENERATED}.api.ingest_service.upload_document")
    list_collections = importlib.import_module(f"{GENERATED}.api.ingest_service.list_collections")
    search = importlib.import_module(f"{GENERATED}.api.retriever_service.search")
    models = importlib.import_module(f"{GENERATED}.models")
    types = importlib.import_module(f"{GENERATED}.types")

    base = stack.cfg.base_url
    anon = client_mod.Client(base_url=base, timeout=httpx.Timeout(30))
    health = get_health.sync_detailed(client=anon)
    assert health.status_code == 200 and health.parsed.status == "SERVING"

    client = client_mod.AuthenticatedClient(base_url=base, token=DEV_KEY, timeout=httpx.Timeout(60))
    collection = f"oapi-py-{secrets.token_hex(3)}"
    # The upload is the file's bytes, not JSON: the document holds the file's text.
    file = types.File(payload=io.BytesIO(b"# Envoy\n\nEnvoy transcodes JSON to gRPC."))
    uploaded = upload.sync_detailed(
        collection, client=client, body=file, filename="envoy.md", title="Envoy"
    )
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.parsed.extracted_chars < 60  # the text, not a JSON wrapper

    listed = list_collections.sync_detailed(client=client)
    assert listed.status_code == 200
    assert collection in [c.name for c in listed.parsed.collections]

    found = search.sync_detailed(
        client=client,
        body=models.SearchRequest(query="what transcodes JSON?", collection=collection, limit=3),
    )
    assert found.status_code == 200, found.content
    assert found.parsed.hits[0].title == "Envoy"
    assert "Envoy transcodes JSON to gRPC." in found.parsed.hits[0].text

    # Errors parse into the documented Status.
    unauth = search.sync_detailed(
        client=anon, body=models.SearchRequest(query="x", collection=collection)
    )
    assert unauth.status_code == 401 and unauth.parsed.code == 16


def test_generated_typescript_client_calls_the_gateway(stack, spec_file, api_collection):
    work = spec_file.parent / "ts"
    work.mkdir()
    if not (TS_CHECK / "node_modules" / "openapi-typescript").is_dir():
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], TS_CHECK)
    for name in ("call.ts", "tsconfig.json", "package.json"):
        shutil.copy(TS_CHECK / name, work / name)
    (work / "node_modules").symlink_to(TS_CHECK / "node_modules")
    bin_dir = TS_CHECK / "node_modules" / ".bin"
    _run([str(bin_dir / "openapi-typescript"), str(spec_file), "-o", "schema.d.ts"], work)
    _run([str(bin_dir / "tsc"), "-p", "."], work)  # type-checks the calls against the spec
    out = _run(["node", "build/call.js", stack.cfg.base_url, DEV_KEY, api_collection], work).strip()
    result = json.loads(out.splitlines()[-1])
    assert result["statuses"] == [200, 200, 200], result
    assert result["health"] == "SERVING"
    assert api_collection in result["collections"]
    assert result["titles"][0] == "Envoy"


@pytest.fixture
async def api_collection(api) -> str:
    collection = f"oapi-ts-{secrets.token_hex(3)}"
    reply = await api.post(
        "/api/v1/ingest",
        json={
            "collection": collection,
            "documents": [{"title": "Envoy", "content": "Envoy transcodes JSON to gRPC."}],
        },
    )
    assert reply.status_code == 200, reply.text
    return collection

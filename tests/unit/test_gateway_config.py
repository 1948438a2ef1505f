"""The rendered Envoy config: accepted by the real Envoy, with the transcoder traps handled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ragline_stack.envoy_config import GatewayConfig, render
from ragline_stack.stack import ROOT

ENVOY = Path(sys.executable).parent / "envoy"


def config(**overrides) -> GatewayConfig:
    values = dict(
        api_port=18000,
        admin_port=19901,
        descriptor_path=ROOT / "gen/ragline.binpb",
        service_addrs={
            s: f"127.0.0.1:{p}"
            for s, p in zip(
                ("embedder", "retriever", "chat", "ingest", "auth"),
                range(50051, 50056),
                strict=True,
            )
        }
        | {"chat_http": "127.0.0.1:50063"},
        request_timeout_s=30,
    )
    values.update(overrides)
    return GatewayConfig(**values)


def test_envoy_accepts_the_config(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(render(config()))
    proc = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_envoy_rejects_a_broken_config(tmp_path):
    path = tmp_path / "envoy.yaml"
    path.write_text(
        render(config()).replace(
            "grpc_json_transcoder.v3.GrpcJsonTranscoder", "grpc_json_transcoder.v3.NoSuchThing"
        )
    )
    proc = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0


def _filters(doc: dict) -> list[dict]:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["http_filters"]


def test_transcoder_traps_are_set():
    doc = yaml.safe_load(render(config()))
    transcoder = next(f for f in _filters(doc) if f["name"].endswith("grpc_json_transcoder"))
    cfg = transcoder["typed_config"]
    assert cfg["match_incoming_request_route"] is True
    assert cfg["convert_grpc_status"] is True
    assert cfg["print_options"]["preserve_proto_field_names"] is True
    names = [f["name"] for f in _filters(doc)]
    assert names.index("envoy.filters.http.buffer") < names.index(transcoder["name"])


def test_admin_is_loopback_only_and_streams_have_no_route_timeout():
    doc = yaml.safe_load(render(config(listen_host="0.0.0.0")))
    assert doc["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    # (The 405 routes of the same paths come first; they have no upstream.)
    routes = [r for r in routes if "route" in r]
    stream = next(r for r in routes if r["match"].get("path") == "/api/v1/chat:stream")
    assert stream["route"]["timeout"] == "0s"
    embeddings = next(r for r in routes if r["match"].get("path") == "/api/v1/embeddings")
    assert embeddings["route"]["timeout"] == "35s"
    assert not any("response_headers_to_remove" in r for r in routes)


def test_every_rest_binding_has_a_route_and_a_405_for_other_methods():
    from ragline_stack import bindings
    from ragline_stack.envoy_config import serving_route

    routes = _routes(render(config()))
    not_allowed = {
        r["name"]: r for r in routes if r.get("direct_response", {}).get("status") == 405
    }
    for template, methods in bindings.methods_by_path().items():
        sample = bindings.sample_path(template)
        # Every binding reaches a real route, never the catch-all 404.
        assert sample == "/health" or serving_route(sample) is not None, template
        route = not_allowed[f"method_not_allowed {template}"]
        headers = {h["name"]: h for h in route["match"]["headers"]}
        assert headers[":method"]["invert_match"] is True
        assert headers["access-control-request-method"]["invert_match"] is True
        (allow,) = route["response_headers_to_add"]
        assert allow["header"] == {"key": "allow", "value": ", ".join(methods)}
        transcoder = route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]
        assert transcoder["disabled"] is True
    # Before every route that serves a path, so a wrong method never reaches one (HEAD
    # /health, which only HEAD matches, comes first).
    first_served = next(
        i for i, r in enumerate(routes) if "route" in r and r["name"] != "health_head"
    )
    assert all(i < first_served for i, r in enumerate(routes) if r["name"] in not_allowed)


def test_plain_http_routes_turn_the_transcoder_off():
    routes = {r["name"]: r for r in _routes(render(config()))}
    for name in (
        "/api/v1/chat/ws",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models",
        "metrics",
        "not_found",
    ):
        per_filter = routes[name]["typed_per_filter_config"]
        assert per_filter["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True, name
    assert "envoy.filters.http.grpc_json_transcoder" not in routes["/api/v1/search"].get(
        "typed_per_filter_config", {}
    )


def test_v1_embeddings_needs_the_embeddings_scope_and_its_limit_group():
    route = {r["name"]: r for r in _routes(render(config()))}["/v1/embeddings"]
    assert route["route"]["cluster"] == "chat_http"
    authz = route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
    assert authz["check_settings"]["context_extensions"]["scope"] == "embeddings"
    actions = route["route"]["rate_limits"][0]["actions"]
    assert {"generic_key": {"descriptor_key": "endpoint", "descriptor_value": "embeddings"}} in (
        actions
    )


def test_the_gateways_own_replies_on_v1_paths_come_first_in_openai_shape():
    doc = yaml.safe_load(render(config()))
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    mappers = hcm["typed_config"]["local_reply_config"]["mappers"]

    def on_v1(mapper: dict) -> bool:
        filters = mapper["filter"].get("and_filter", {}).get("filters", [])
        return any(f.get("header_filter", {}).get("header", {}).get("name") == ":path"
                   for f in filters)  # fmt: skip

    first_other = next(i for i, m in enumerate(mappers) if not on_v1(m))
    assert first_other > 0 and not any(on_v1(m) for m in mappers[first_other:])
    statuses = set()
    for mapper in mappers[:first_other]:
        body = mapper["body_format_override"]
        if "json_format" not in body:  # the auth service's denial, passed as it wrote it
            assert body["text_format_source"]["inline_string"] == "%LOCAL_REPLY_BODY%"
            continue
        error = body["json_format"]["error"]
        assert set(error) == {"message", "type", "code", "param"}
        assert error["message"] == body["json_format"]["message"]
        text = yaml.safe_dump(mapper["filter"])
        for status in (401, 403, 404, 405, 413, 429):
            if f"default_value: {status}" in text:
                statuses.add((status, error["type"]))
    assert statuses >= {
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "invalid_request_error"),
        (429, "rate_limit_error"),
    }
    # The 429 keeps its Retry-After.
    limited = next(m for m in mappers[:first_other] if "default_value: 429" in yaml.safe_dump(m))
    assert limited["headers_to_add"][0]["header"]["key"] == "retry-after"


def _routes(text: str) -> list[dict]:
    doc = yaml.safe_load(text)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    return hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]

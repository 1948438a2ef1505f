"""The gateway's security settings in the rendered Envoy config, and the auth domain's
pure parts (scopes, hashing, decisions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from ragline_auth import scopes as sc
from ragline_auth.authz import Authorizer, Denial, Identity, allowed
from ragline_auth.keys import ApiKey, KeyHasher, generate_key
from ragline_auth.tokens import Claims
from ragline_core import caller
from ragline_stack import gateway
from ragline_stack.envoy_config import REST_ROUTES, GatewayConfig, render
from ragline_stack.stack import ROOT
from tests.support.identity import TEST_INTERNAL_KEY
from tests.unit.test_gateway_config import config


@pytest.fixture(autouse=True)
def _internal_tokens():
    """The auth process's authenticator: allowed() mints the identity the services verify."""
    caller.install(caller.Authenticator(caller.InternalTokens([TEST_INTERNAL_KEY]), None), "auth")


def _doc(**overrides) -> dict:
    return yaml.safe_load(render(config(**overrides)))


def _hcm(doc: dict) -> dict:
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_filters_run_in_the_secure_order():
    names = [f["name"] for f in _hcm(_doc())["http_filters"]]
    order = [
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.cors",
        "envoy.filters.http.local_ratelimit",
        gateway.WS_BEARER_FILTER,
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac",
        gateway.KEY_CACHE_FILTER,
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.ratelimit",
        "envoy.filters.http.buffer",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    assert [n for n in names if n in order] == order
    assert names[0] == "envoy.filters.http.header_mutation"


def test_identity_headers_are_stripped_and_auth_fails_closed():
    filters = {f["name"]: f["typed_config"] for f in _hcm(_doc())["http_filters"]}
    mutations = filters["envoy.filters.http.header_mutation"]["mutations"]["request_mutations"]
    removed = {m["remove"] for m in mutations if "remove" in m}
    assert removed == set(gateway.IDENTITY_HEADERS)
    # The client's method, for usage analytics, overwrites any client-sent copy.
    (added,) = [m["append"] for m in mutations if "append" in m]
    assert added["header"] == {"key": gateway.METHOD_HEADER, "value": "%REQ(:METHOD)%"}
    assert added["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"
    authz = filters["envoy.filters.http.ext_authz"]
    assert authz["failure_mode_allow"] is False and authz["status_on_error"]["code"] == 503
    burst = filters["envoy.filters.http.local_ratelimit"]
    assert burst["filter_enabled"] and burst["filter_enforced"]
    assert burst["rate_limited_as_resource_exhausted"] is True
    limit = filters["envoy.filters.http.ratelimit"]
    assert limit["failure_mode_deny"] is False and limit["rate_limited_as_resource_exhausted"]


def test_every_route_is_authenticated_unless_public():
    routes = _hcm(_doc())["route_config"]["virtual_hosts"][0]["routes"]
    # /oauth2/token: the client authenticates itself (client id and secret).
    public = {"/health", "/openapi.json", "/docs", "/.well-known/jwks.json", "/oauth2/token"}
    # The dashboard's static files (its API calls carry a token), and their 405 route.
    public |= {"/admin", "/admin/", "/admin/{path}"}
    for route in routes:
        authz = route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
        match = route["match"]
        path = match.get("path") or match.get("prefix") or route.get("name", "").split(" ")[-1]
        if path in public:
            assert authz.get("disabled") is True, route
        else:
            scope = authz["check_settings"]["context_extensions"]["scope"]
            assert scope in (*sc.SCOPES, sc.AUTHENTICATED, sc.API_KEY_ONLY), route
    assert routes[-1]["match"] == {"prefix": "/"} and routes[-1]["direct_response"]
    assert all(not r.public or r.cluster == "auth" for r in REST_ROUTES)


def test_the_key_cache_knows_each_routes_scope_and_skips_ext_authz_only_when_verified():
    hcm = _hcm(_doc())
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        authz = route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
        cached = route.get("metadata", {}).get("filter_metadata", {}).get(gateway.KEY_CACHE_FILTER)
        if authz.get("disabled"):
            assert cached is None, route  # public: the cache never sets an identity
        else:
            assert cached == {"scope": authz["check_settings"]["context_extensions"]["scope"]}
    # The cache pairs a response with its request's key by x-request-id: Envoy must make a
    # fresh one for every client request.
    assert hcm["use_remote_address"] is True and hcm["internal_address_config"]["cidr_ranges"] == []
    assert not hcm.get("preserve_external_request_id") and hcm.get("generate_request_id", True)
    filters = {f["name"]: f["typed_config"] for f in hcm["http_filters"]}
    code = filters[gateway.KEY_CACHE_FILTER]["default_source_code"]["inline_string"]
    assert 'local AUTHZ_NAMESPACE = "envoy.filters.http.ext_authz"' in code
    assert "function envoy_on_request" in code and "function envoy_on_response" in code
    skip = filters["envoy.filters.http.ext_authz"]["filter_enabled_metadata"]
    assert skip == {
        "filter": "ragline.authn",
        "path": [{"key": "verified"}],
        "value": {"present_match": True},
        "invert": True,
    }


def test_without_the_key_cache_only_a_verified_jwt_skips_ext_authz():
    hcm = _hcm(_doc(key_cache=False))
    filters = {f["name"]: f["typed_config"] for f in hcm["http_filters"]}
    assert gateway.KEY_CACHE_FILTER not in filters
    skip = filters["envoy.filters.http.ext_authz"]["filter_enabled_metadata"]
    assert skip["filter"] == "envoy.filters.http.jwt_authn" and skip["invert"] is True
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert not any(
        gateway.KEY_CACHE_FILTER in r.get("metadata", {}).get("filter_metadata", {}) for r in routes
    )


def test_edge_hardening():
    doc = _doc()
    hcm = _hcm(doc)
    assert hcm["use_remote_address"] is True
    assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == (
        "REJECT_REQUEST"
    )
    assert hcm["internal_address_config"] == {"cidr_ranges": []}
    assert hcm["request_headers_timeout"] and hcm["stream_idle_timeout"]
    assert hcm["max_request_headers_kb"] <= 60
    monitors = {m["name"] for m in doc["overload_manager"]["resource_monitors"]}
    assert "envoy.resource_monitors.fixed_heap" in monitors


def test_ratelimit_config_covers_every_tier_and_group():
    cfg = gateway.ratelimit_config()
    tiers = {d["value"]: d for d in cfg["descriptors"]}
    assert set(tiers) == set(sc.TIERS)
    for tier in tiers.values():
        groups = {d["value"] for d in tier["descriptors"]}
        assert {"embeddings", "search", "chat", "ingest", "analytics", "admin", "tokens"} <= groups


def test_no_auth_config_has_no_auth_filters():
    names = [f["name"] for f in _hcm(_doc(auth_enabled=False))["http_filters"]]
    assert "envoy.filters.http.ext_authz" not in names
    assert "envoy.filters.http.jwt_authn" not in names


def test_cors_origins_come_from_the_config():
    doc = _doc(cors_origins=("https://app.example",))
    vhost = _hcm(doc)["route_config"]["virtual_hosts"][0]
    policy = vhost["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert policy["allow_origin_string_match"] == [{"exact": "https://app.example"}]


def test_scopes_parse_and_reject_unknown():
    assert sc.parse_scopes("search, embeddings") == ("embeddings", "search")
    with pytest.raises(ValueError, match="bogus"):
        sc.parse_scopes("search,bogus")


def test_keys_are_random_prefixed_and_hashed_with_a_pepper():
    key = generate_key("live")
    assert key.startswith("rl_live_") and len(key) >= 50
    assert generate_key("live") != key
    a, b = KeyHasher(b"pepper-a"), KeyHasher(b"pepper-b")
    assert a.digest(key) != b.digest(key) and key not in a.digest(key)
    assert KeyHasher.same(a.digest(key), a.digest(key))


class _Keys:
    async def lookup(self, token):
        return None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "MISSING_CREDENTIALS"),
        ("Token abc", "MALFORMED_CREDENTIALS"),
        ("Bearer a b", "MALFORMED_CREDENTIALS"),
        ("Bearer " + "x" * 300, "INVALID_API_KEY"),
        ("Bearer eyJhbGciOiJub25lIn0.e30.", "INVALID_TOKEN"),
    ],
)
async def test_decisions_on_bad_credentials(header, reason):
    class _Signer:
        def verify(self, token):
            from ragline_auth.tokens import TokenError

            raise TokenError("invalid token", expired=False)

    authorizer = Authorizer(_Keys(), _Signer())  # type: ignore[arg-type]
    decision = await authorizer.decide({"authorization": header} if header else {}, "search")
    assert isinstance(decision, Denial) and decision.reason == reason
    assert decision.http_status == 401


def _key(expires_in: float | None = None) -> ApiKey:
    now = datetime.now(UTC)
    return ApiKey(
        key_id="k1",
        digest="d",
        prefix="rl_live_ab",
        tenant="acme",
        scopes=("search", "embeddings"),
        tier="free",
        environment="live",
        name="",
        created_at=now,
        expires_at=None if expires_in is None else now + timedelta(seconds=expires_in),
    )


class _FoundKeys:
    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.touched = 0

    async def lookup(self, token):
        return self.key

    def touch(self, key):
        self.touched += 1


@pytest.mark.parametrize(
    ("ttl", "expires_in", "low", "high"),
    [
        (1.0, None, 1000, 1000),  # the configured reuse
        (1.0, 0.3, 1, 300),  # never past the key's expiry (or a rotation's grace)
        (0.0, None, 0, 0),  # off: every request is checked
    ],
)
async def test_an_allowed_key_says_how_long_the_gateway_may_reuse_it(ttl, expires_in, low, high):
    keys = _FoundKeys(_key(expires_in))
    authorizer = Authorizer(keys, None, gateway_cache_ttl=ttl)  # type: ignore[arg-type]
    identity = await authorizer.decide({"authorization": "Bearer rl_live_x"}, "search")
    assert isinstance(identity, Identity) and low <= identity.cache_ms <= high
    reply = allowed(identity)
    metadata = dict(reply.dynamic_metadata)
    assert metadata["tenant"] == "acme" and metadata["key_id"] == "k1"
    # The services get a signed identity for exactly this caller.
    headers = {h.header.key: h.header.value for h in reply.ok_response.headers}
    signed = caller.InternalTokens([TEST_INTERNAL_KEY]).verify(headers[caller.IDENTITY_HEADER])
    assert signed == caller.Caller("acme", "k1", ("search", "embeddings"), "free", "api_key")
    if identity.cache_ms:
        assert metadata["cache_ms"] == identity.cache_ms
        assert metadata["scopes"] == "search,embeddings" and metadata["tier"] == "free"
        # The key cache reuses that identity, within its lifetime.
        assert metadata["identity"] == headers[caller.IDENTITY_HEADER]
    else:
        assert "cache_ms" not in metadata and "identity" not in metadata
    assert keys.touched == 1


async def test_a_denied_scope_or_a_jwt_is_never_cached_at_the_gateway():
    class _Signer:
        def verify(self, token):
            return Claims("k1", "acme", ("search",), "free")

    authorizer = Authorizer(_FoundKeys(_key()), _Signer(), gateway_cache_ttl=1.0)  # type: ignore[arg-type]
    denied = await authorizer.decide({"authorization": "Bearer rl_live_x"}, "admin")
    assert isinstance(denied, Denial) and denied.http_status == 403
    jwt = await authorizer.decide({"authorization": "Bearer eyJa.eyJb.c"}, "search")
    assert isinstance(jwt, Identity) and jwt.method == "jwt" and jwt.cache_ms == 0
    assert "cache_ms" not in dict(allowed(jwt).dynamic_metadata)


def test_scope_check():
    ident = Identity("k", "t", ("search",), "free", "jwt")
    assert Authorizer._check_scope(ident, "search") is ident
    denied = Authorizer._check_scope(ident, "admin")
    assert isinstance(denied, Denial) and denied.http_status == 403
    assert isinstance(Authorizer._check_scope(ident, sc.API_KEY_ONLY), Denial)


def test_openapi_document_is_generated_and_marks_public_operations():
    import json

    doc = json.loads((ROOT / "gen/openapi/openapi.json").read_text())
    assert doc["paths"]["/health"]["get"]["security"] == []
    embeddings = doc["paths"]["/api/v1/embeddings"]["post"]
    assert "401" in embeddings["responses"] and "security" not in embeddings
    props = doc["components"]["schemas"]["CreateEmbeddingsRequest"]["properties"]
    assert {"text", "texts", "model"} <= set(props)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_gateway_config_type_is_importable():
    assert GatewayConfig.__dataclass_fields__["auth_enabled"].default is True


def test_websocket_bearer_subprotocol_is_moved_only_on_the_websocket_route():
    routes = _hcm(_doc())["route_config"]["virtual_hosts"][0]["routes"]
    with_code = [
        r["name"]
        for r in routes
        if gateway.WS_BEARER_FILTER in r.get("typed_per_filter_config", {})
    ]
    assert with_code == ["/api/v1/chat/ws"]
    (ws,) = [r for r in routes if r["name"] == "/api/v1/chat/ws"]
    code = ws["typed_per_filter_config"][gateway.WS_BEARER_FILTER]["source_code"]["inline_string"]
    assert '"ragline.bearer."' in code and "sec-websocket-protocol" in code


def test_metrics_are_internal_or_need_the_admin_scope():
    doc = _doc(listen_host="0.0.0.0", metrics_port=19902)
    public, internal = doc["static_resources"]["listeners"]
    assert public["name"] == "api" and internal["name"] == "metrics"
    routes = _hcm(doc)["route_config"]["virtual_hosts"][0]["routes"]
    (metrics,) = [r for r in routes if r["name"] == "metrics"]
    authz = metrics["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
    assert authz["check_settings"]["context_extensions"]["scope"] == sc.ADMIN
    # The internal listener: its own port, no auth filters, only GET /metrics to the admin.
    assert internal["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 19902}
    hcm = internal["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in hcm["http_filters"]] == ["envoy.filters.http.router"]
    scrape, rest = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert scrape["match"]["path"] == "/metrics" and scrape["route"]["cluster"] == "envoy_admin"
    assert rest["match"] == {"prefix": "/"} and rest["direct_response"]["status"] == 404

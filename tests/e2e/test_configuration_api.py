"""GET /api/v1/configuration: every service's effective settings as it reported them at
start-up, with no secret of the suite's stack in the answer, and the rate-limit tiers the
gateway enforces; admins only."""

from __future__ import annotations

import uuid

import pytest

from ragline_core.rate_limits import RATE_LIMIT_TIERS
from ragline_core.system import SERVICES
from tests.conftest import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY
from tests.support.assertions import error_body, reason_of
from tests.support.gateway import bearer, create_key, wait_until
from tests.support.identity import TEST_INTERNAL_KEY

pytestmark = pytest.mark.e2e


async def test_admins_see_every_services_settings_without_secrets(api, stack):
    async def all_reported() -> bool:
        reply = await api.get("/api/v1/configuration")
        return reply.status_code == 200 and len(reply.json().get("services", [])) == 5

    await wait_until(all_reported, timeout=20)
    reply = await api.get("/api/v1/configuration")
    body = reply.json()
    assert reply.headers["content-type"].startswith("application/json")
    by_service = {s["service"]: s for s in body["services"]}
    assert set(by_service) == set(SERVICES)
    for name, svc in by_service.items():
        settings = {s["name"]: s for s in svc["settings"]}
        # What the stack really set (for every process of the service: other tests start
        # extra replicas with other addresses, and the last one started is the one shown).
        assert settings["MONGODB_DATABASE"]["value"] == stack.cfg.database, name
        assert settings["REQUEST_TIMEOUT"]["value"] == str(stack.cfg.request_timeout_s)
        assert settings["MONGODB_URI"] == {
            "name": "MONGODB_URI",
            "value": "[set]",
            "redacted": True,
        }
        assert settings["INTERNAL_TOKEN_KEYS"]["value"] == "[set]"
        assert svc["report_time"] and svc["version"] == "1.0.0" and ":" in svc["instance"]
    auth = {s["name"]: s for s in by_service["auth"]["settings"]}
    assert auth["DEV_KEYS_TIER"]["redacted"]  # a secret-like name: withheld, though harmless
    assert auth["JWT_TTL"]["value"] == "900"
    # No secret of this stack anywhere in the answer.
    for secret in (OPENAI_TEST_KEY, ANTHROPIC_TEST_KEY, TEST_INTERNAL_KEY, "dev-key-1", "pepper"):
        assert secret not in reply.text, secret
    tiers = {
        t["tier"]: {x["endpoint_group"]: x["requests_per_minute"] for x in t["limits"]}
        for t in body["rate_limit_tiers"]
    }
    assert tiers == RATE_LIMIT_TIERS  # the suite's stack runs the table unscaled


async def test_only_admins_may_read_it(api, anon_api):
    key, _ = await create_key(api, f"cfg-{uuid.uuid4().hex[:8]}", ["search", "analytics"])
    refused = await anon_api.get("/api/v1/configuration", headers=bearer(key))
    assert reason_of(error_body(refused, 403)) == "SCOPE_DENIED"
    anonymous = await anon_api.get("/api/v1/configuration")
    assert anonymous.status_code == 401

"""The admin dashboard's file server (ragline_auth.console): only the build's files, by
their path below /admin/, with the dashboard's headers; a clear 404 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ragline.auth.v1 import console_service_pb2 as pb
from ragline_auth import console
from ragline_auth.app import dashboard_sso
from ragline_auth.settings import AuthSettings
from ragline_core.errors import NotFoundError


class _Context:
    def __init__(self) -> None:
        self.headers: tuple[tuple[str, str], ...] = ()

    async def send_initial_metadata(self, headers: Any) -> None:
        self.headers = tuple(headers)


def _build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>x</title>")
    (root / "assets" / "index-abc.js").write_text("console.log(1)")
    (root / "assets" / "index-abc.js.map").write_text("{}")  # no served type: skipped
    (root / ".built").write_text("")
    return root


async def _get(servicer: console.ConsoleServicer, path: str) -> tuple[Any, dict[str, str]]:
    ctx = _Context()
    body = await servicer.GetConsoleFile(pb.GetConsoleFileRequest(path=path), ctx)  # type: ignore[arg-type]
    return body, dict(ctx.headers)


async def test_page_and_assets_with_their_headers(tmp_path):
    servicer = console.ConsoleServicer(_build(tmp_path / "dist"))
    for path in ("", "/", "index.html"):
        page, headers = await _get(servicer, path)
        assert page.content_type.startswith("text/html") and page.data.startswith(b"<!doctype")
        assert headers["cache-control"] == "no-cache"
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    script, headers = await _get(servicer, "assets/index-abc.js")
    assert script.content_type.startswith("text/javascript") and script.data == b"console.log(1)"
    assert "immutable" in headers["cache-control"]


@pytest.mark.parametrize(
    "path", ["assets/index-abc.js.map", ".built", "../index.html", "assets/../../x", "nope.js"]
)
async def test_anything_else_is_not_found(tmp_path, path):
    servicer = console.ConsoleServicer(_build(tmp_path / "dist"))
    with pytest.raises(NotFoundError) as err:
        await _get(servicer, path)
    assert err.value.reason == "CONSOLE_FILE_NOT_FOUND"


async def test_without_a_build_it_says_how_to_make_one(tmp_path):
    servicer = console.ConsoleServicer(tmp_path / "missing")
    with pytest.raises(NotFoundError) as err:
        await _get(servicer, "")
    assert err.value.reason == "CONSOLE_NOT_BUILT" and "make setup" in str(err.value)


async def test_without_single_sign_on_sso_json_is_empty_and_the_policy_self_only(tmp_path):
    servicer = console.ConsoleServicer(_build(tmp_path / "dist"))
    body, headers = await _get(servicer, "sso.json")
    assert body.content_type == "application/json" and json.loads(body.data) == {}
    assert "connect-src 'self';" in headers["content-security-policy"]


async def test_with_single_sign_on_the_page_may_reach_the_provider_and_nothing_else(tmp_path):
    sso = console.SsoSettings(
        issuer="https://idp.example.com/realms/x/",
        client_id="ragline-dashboard",
        scopes="openid ragline.admin",
        audience="ragline",
    )
    servicer = console.ConsoleServicer(_build(tmp_path / "dist"), sso)
    body, _ = await _get(servicer, "sso.json")
    assert json.loads(body.data) == {
        "issuer": "https://idp.example.com/realms/x/",
        "client_id": "ragline-dashboard",
        "scopes": "openid ragline.admin",
        "audience": "ragline",
    }
    for path in ("", "assets/index-abc.js", "sso.json"):
        _, headers = await _get(servicer, path)
        csp = headers["content-security-policy"]
        assert "connect-src 'self' https://idp.example.com;" in csp, csp
        assert "script-src 'self';" in csp and "form-action 'none'" in csp


def test_dashboard_sso_settings_are_checked():
    base = {"OIDC_AUDIENCE": "ragline"}
    with pytest.raises(ValueError, match="OIDC_DASHBOARD_CLIENT_ID needs OIDC_ISSUER"):
        AuthSettings(OIDC_DASHBOARD_CLIENT_ID="dash", **base)
    with pytest.raises(ValueError, match="http"):
        AuthSettings(OIDC_ISSUER="idp.example.com", **base)
    settings = AuthSettings(
        OIDC_ISSUER="http://127.0.0.1:4444/", OIDC_DASHBOARD_CLIENT_ID="dash", **base
    )
    sso = dashboard_sso(settings)
    assert sso == console.SsoSettings("http://127.0.0.1:4444/", "dash", "openid", "ragline")
    assert dashboard_sso(AuthSettings()) is None

"""The admin dashboard's files (tools/admin-ui, built by `make setup` into its dist/ folder),
served at /admin through the gateway. They are read once at start-up into memory, so a
request never touches the filesystem and no path from a URL is ever opened.

Headers: a Content-Security-Policy of 'self' only (the build has no inline script or style,
and the dashboard calls only this gateway, plus the identity provider's origin when single
sign-on is configured), no framing, nosniff, no referrer; the page is revalidated on every
load, the content-hashed assets are cached for a year.

/admin/sso.json tells the page how to sign in through the provider (docs/dashboard.md):
the issuer, the dashboard's public client id, its scopes and the audience; `{}` without
single sign-on. None of it is secret: a public client has no secret (PKCE instead)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from google.api import httpbody_pb2

from ragline.auth.v1 import console_service_pb2 as pb
from ragline.auth.v1 import console_service_pb2_grpc as pb_grpc
from ragline_core.errors import NotFoundError
from ragline_core.rpc_types import Context

log = logging.getLogger("ragline.auth.console")

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "tools" / "admin-ui" / "dist"
PAGE = "index.html"
SSO_FILE = "sso.json"


def policy(connect_origins: Sequence[str] = ()) -> str:
    """The Content-Security-Policy; `connect_origins` may be fetched besides this origin
    (the identity provider's discovery document and token endpoint)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # The page's icon is an empty data: URL (else the browser asks for /favicon.ico).
            "img-src 'self' data:",
            " ".join(["connect-src 'self'", *connect_origins]),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


POLICY = policy()


def origin_of(url: str) -> str:
    """scheme://host[:port] of an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class SsoSettings:
    """The dashboard's sign-in through an OpenID Connect provider (all public values)."""

    issuer: str
    client_id: str
    scopes: str
    audience: str


def _headers(csp: str, cache: str) -> tuple[tuple[str, str], ...]:
    return (
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", cache),
    )


_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
}


@dataclass(frozen=True)
class ConsoleFile:
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


def load(directory: Path, sso: SsoSettings | None = None) -> dict[str, ConsoleFile]:
    """Every servable file of the build, by its path below /admin/ ("" is the page), and
    sso.json."""
    files: dict[str, ConsoleFile] = {}
    if not (directory / PAGE).is_file():
        return files
    csp = policy([origin_of(sso.issuer)] if sso else [])
    for path in sorted(directory.rglob("*")):
        kind = _TYPES.get(path.suffix)
        if not path.is_file() or kind is None:
            continue
        rel = path.relative_to(directory).as_posix()
        # Vite names assets by their content hash: a new build has new names.
        cache = "public, max-age=31536000, immutable" if rel.startswith("assets/") else "no-cache"
        files[rel] = ConsoleFile(kind, path.read_bytes(), _headers(csp, cache))
    files[""] = files[PAGE]
    files[SSO_FILE] = ConsoleFile(
        _TYPES[".json"],
        json.dumps(asdict(sso) if sso else {}).encode(),
        _headers(csp, "no-cache"),
    )
    return files


class ConsoleServicer(pb_grpc.ConsoleServiceServicer):
    def __init__(self, directory: Path, sso: SsoSettings | None = None) -> None:
        self.directory = directory
        self.files = load(directory, sso)
        if not self.files:
            log.warning(
                "admin dashboard not built: /admin answers 404", extra={"dir": str(directory)}
            )

    async def GetConsoleFile(
        self, request: pb.GetConsoleFileRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        if not self.files:
            raise NotFoundError(
                "the admin dashboard is not built: `make setup` builds tools/admin-ui",
                reason="CONSOLE_NOT_BUILT",
            )
        found = self.files.get(request.path.strip("/"))
        if found is None:
            raise NotFoundError(
                f"no dashboard file {request.path[:64]!r}", reason="CONSOLE_FILE_NOT_FOUND"
            )
        # gRPC response headers reach the client as HTTP headers (the transcoder keeps them).
        await context.send_initial_metadata(found.headers)
        return httpbody_pb2.HttpBody(content_type=found.content_type, data=found.body)

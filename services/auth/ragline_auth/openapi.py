"""Finishes the OpenAPI document that protoc-gen-openapiv2 generated from the protos.

Run by scripts/gen_protos.sh (as a file: it needs nothing but the standard library). The
generator knows the HTTP bindings, not the gateway's policy, so this step adds what the
gateway decides: which operations need no key, the error answers every authenticated
operation can give (401, 403, 429), and the title and version from the settings' defaults.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Operations anyone may call (the gateway exempts them from authentication).
PUBLIC_PATHS = ("/health", "/openapi.json", "/docs", "/.well-known/jwks.json")

_STATUS_REF = {"$ref": "#/definitions/Status"}
_AUTH_ERRORS = {
    "401": "Missing, malformed, unknown, expired or revoked key or token.",
    "403": "The key or token lacks the scope this operation needs.",
    "429": "Rate limit or spend cap reached; see Retry-After and x-ratelimit-* headers.",
}
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Marks public operations and documents the gateway's error answers."""
    doc.setdefault("info", {})
    doc["info"]["title"] = "RAG API Service"
    doc["info"]["version"] = "1.0.0"
    for path, item in doc.get("paths", {}).items():
        for method in _HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            if path in PUBLIC_PATHS:
                op["security"] = []
                continue
            for status, description in _AUTH_ERRORS.items():
                responses.setdefault(status, {"description": description, "schema": _STATUS_REF})
    return doc


def main(argv: list[str]) -> int:
    path = Path(argv[1])
    doc = json.loads(path.read_text())
    target = path.with_name("openapi.json")
    target.write_text(json.dumps(finish(doc), indent=2, sort_keys=True) + "\n")
    path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

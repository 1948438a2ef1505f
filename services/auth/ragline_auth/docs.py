"""The OpenAPI document (generated from the protos by scripts/gen_protos.sh) and a
self-contained page that renders it: no CDN, no script from elsewhere."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "gen" / "openapi" / "openapi.json"


def load(path: str | None) -> bytes:
    target = Path(path) if path else DEFAULT_PATH
    return target.read_bytes()


def page(document: bytes) -> bytes:
    """One HTML page listing every operation with its parameters and schemas."""
    doc: dict[str, Any] = json.loads(document)
    info = doc.get("info", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(info.get('title', 'API'))} reference</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem;color:#222}code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}"
        "pre{padding:.6rem;overflow:auto}h2{margin-top:2rem;border-bottom:1px solid #ddd}"
        ".m{display:inline-block;min-width:4.5rem;font-weight:700}"
        "details{margin:.4rem 0}summary{cursor:pointer}</style></head><body>",
        f"<h1>{html.escape(info.get('title', 'API'))} <small>{html.escape(info.get('version', ''))}"
        "</small></h1>",
        f"<p>{html.escape(info.get('description', ''))}</p>",
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a>.</p>",
    ]
    for path, item in sorted(doc.get("paths", {}).items()):
        for method, op in item.items():
            if not isinstance(op, dict) or method.startswith("x-"):
                continue
            public = op.get("security") == []
            parts.append(
                f"<h2><span class='m'>{method.upper()}</span><code>{html.escape(path)}</code>"
                f"{' <small>(no key needed)</small>' if public else ''}</h2>"
                f"<p>{html.escape(op.get('summary', '') or op.get('description', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                parts.append("<details><summary>parameters</summary><pre>")
                parts.append(html.escape(json.dumps(params, indent=2)))
                parts.append("</pre></details>")
            parts.append("<details><summary>responses</summary><pre>")
            parts.append(html.escape(json.dumps(op.get("responses", {}), indent=2)))
            parts.append("</pre></details>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in sorted(doc.get("definitions", {}).items()):
        parts.append(f"<details><summary><code>{html.escape(name)}</code></summary><pre>")
        parts.append(html.escape(json.dumps(schema, indent=2)))
        parts.append("</pre></details>")
    parts.append("</body></html>")
    return "".join(parts).encode()

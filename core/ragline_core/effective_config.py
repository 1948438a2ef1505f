"""A service's effective configuration, redacted, for the admin dashboard's System page.

Each service writes what it runs with to the `system_configuration` collection at start-up
(one document per service, `_id` = the service's name: the last replica to start wins, and
replicas of a service share their configuration); the auth service serves them at
GET /api/v1/configuration.

Redaction is by allow-list of kinds, not by a list of secret names: a value is shown in
clear only when it is a number, a boolean or one of fixed choices, or text (or a list or
map of it) under a name that says nothing of keys, secrets, passwords, tokens, peppers or
credentials, with any URL's user, password, query and fragment removed. A `SecretStr`, and
any text under such a name, shows only whether it is set. A new setting is therefore shown
only if it is harmless by kind or by name.
"""

from __future__ import annotations

import json
import logging
import re
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ragline_core.system import this_process

log = logging.getLogger("ragline.config")

COLLECTION = "system_configuration"
# Names whose text is never shown. Durations and counts under such names (KEY_CACHE_TTL,
# INTERNAL_TOKEN_TTL_S) are numbers, and numbers are shown.
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|PEPPER|CREDENTIAL|DSN", re.I)
SET, NOT_SET = "[set]", "[not set]"
MAX_VALUE_CHARS = 512


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    redacted: bool


def _strip_url(text: str) -> str:
    """A URL without user, password, query or fragment; other text as it is."""
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return text
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _plain_kind(annotation: Any) -> bool:
    """Numbers, booleans and fixed choices (Literal, Enum), optionally None."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return all(a is type(None) or _plain_kind(a) for a in args)
    if origin is Literal:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (bool, int, float, Enum))
    return False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return _strip_url(value)
    if isinstance(value, (list, tuple)):
        return json.dumps([_text(v) for v in value])
    if isinstance(value, dict):
        return json.dumps({str(k): _text(v) if isinstance(v, str) else v for k, v in value.items()})
    return (
        json.dumps(value) if value is None or isinstance(value, (bool, int, float)) else str(value)
    )


def redacted(settings: BaseSettings) -> list[Setting]:
    """Every setting of `settings`, by name, each shown in clear or redacted (module doc)."""
    out = []
    for name, info in sorted(type(settings).model_fields.items()):
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or (
            SECRET_NAME.search(name) and not _plain_kind(info.annotation)
        ):
            empty = value is None or value == "" or value == [] or value == {}
            if isinstance(value, SecretStr):
                empty = not value.get_secret_value()
            out.append(Setting(name, NOT_SET if empty else SET, True))
            continue
        if isinstance(value, Enum):
            value = value.value
        text = _text(value)
        if len(text) > MAX_VALUE_CHARS:
            text = text[: MAX_VALUE_CHARS - 1] + "…"
        out.append(Setting(name, text, False))
    return out


def document(service: str, version: str, settings: BaseSettings) -> dict[str, Any]:
    return {
        "_id": service,
        "instance": this_process(),
        "version": version,
        "reported_at": datetime.now(UTC),
        "settings": [
            {"name": s.name, "value": s.value, "redacted": s.redacted} for s in redacted(settings)
        ],
    }


async def publish(db: Any, service: str, version: str, settings: BaseSettings) -> None:
    """Writes this service's configuration (best effort: a service starts without it)."""
    try:
        doc = document(service, version, settings)
        await db[COLLECTION].replace_one({"_id": service}, doc, upsert=True)
    except Exception as exc:  # the database may be starting too; the page then says so
        log.warning("configuration not published", extra={"error": repr(exc)})

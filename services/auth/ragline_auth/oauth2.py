"""OAuth 2.0 client credentials (RFC 6749 section 4.4) at POST /oauth2/token: a service
account's client id and secret for a short-lived JWT, the same JWT the gateway verifies
for POST /api/v1/tokens.

Errors are raised with the RFC 6749 section 5.2 code as their reason (INVALID_CLIENT, ...);
the gateway's route script (envoy/oauth2_token.lua) turns the transcoded Status into the
RFC's `{"error", "error_description"}` body and adds `WWW-Authenticate` to the 401.
Messages contain no double quotes (that script reads them with a pattern).
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qs, unquote_plus

from ragline_auth import scopes as sc
from ragline_auth.audit import AuditLog, Origin
from ragline_auth.directory import Directory
from ragline_auth.failures import FailedAttempts
from ragline_auth.tokens import Signer
from ragline_core.errors import (
    InvalidArgumentError,
    ResourceExhaustedError,
    UnauthenticatedError,
)

FORM = "application/x-www-form-urlencoded"
GRANT = "client_credentials"
MAX_FORM_BYTES = 4096


def _invalid_request(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, reason="INVALID_REQUEST")


def _invalid_client() -> UnauthenticatedError:
    # One answer for an unknown client, a wrong secret and a deleted account.
    return UnauthenticatedError("client authentication failed", reason="INVALID_CLIENT")


def parse_form(content_type: str, data: bytes) -> dict[str, str]:
    """The form's parameters; each at most once (RFC 6749 section 3.2)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != FORM:
        raise _invalid_request(f"the body must be {FORM}, not {media or 'empty'}")
    if len(data) > MAX_FORM_BYTES:
        raise _invalid_request(f"the form is longer than {MAX_FORM_BYTES} bytes")
    try:
        text = data.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise _invalid_request("the body is not a valid form") from None
    repeated = sorted(k for k, v in fields.items() if len(v) > 1)
    if repeated:
        raise _invalid_request(f"parameter {repeated[0]} is given more than once")
    return {k: v[0] for k, v in fields.items()}


def client_of(form: dict[str, str], authorization: str) -> tuple[str, str]:
    """(client id, secret) from HTTP Basic (client_secret_basic) or the form
    (client_secret_post); exactly one of them."""
    in_form = "client_id" in form or "client_secret" in form
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "basic":
        if in_form:
            raise _invalid_request("send the client credentials once: HTTP Basic or the form")
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid_client() from None
        client_id, sep, secret = raw.partition(":")
        if not sep:
            raise _invalid_client()
        # RFC 6749 section 2.3.1: both are form-encoded before Basic encoding.
        return unquote_plus(client_id), unquote_plus(secret)
    if authorization.strip():
        raise _invalid_client()
    if not form.get("client_id") or not form.get("client_secret"):
        raise _invalid_client()
    return form["client_id"], form["client_secret"]


class ClientCredentials:
    def __init__(
        self,
        directory: Directory,
        signer: Signer,
        audit: AuditLog,
        jwt_ttl: int,
        failures: FailedAttempts,
    ) -> None:
        self.directory = directory
        self.signer = signer
        self.audit = audit
        self.jwt_ttl = jwt_ttl
        self.failures = failures

    async def token(
        self, content_type: str, data: bytes, authorization: str, origin: Origin
    ) -> bytes:
        form = parse_form(content_type, data)
        grant = form.get("grant_type", "")
        if not grant:
            raise _invalid_request("grant_type is required (client_credentials)")
        wait = self.failures.blocked_for(origin.source_ip)
        if wait is not None:
            raise ResourceExhaustedError(
                f"too many failed client authentications from this address; retry in "
                f"{max(1, int(wait) + 1)} s",
                reason="SLOW_DOWN",
            )
        client_id, secret = client_of(form, authorization)
        account = await self.directory.authenticate_client(client_id, secret)
        if account is None:
            self.failures.record(origin.source_ip)
            raise _invalid_client()
        if grant != GRANT:
            raise InvalidArgumentError(
                f"grant type {grant[:64]} is not supported here; use client_credentials",
                reason="UNSUPPORTED_GRANT_TYPE",
            )
        held = account.scopes
        wanted = tuple(s for s in form.get("scope", "").split(" ") if s)
        if not wanted:
            granted = held
        else:
            unknown = [s for s in wanted if s not in sc.SCOPES]
            if unknown:
                raise InvalidArgumentError(
                    f"scope {unknown[0][:64]} is not a scope; choose from {' '.join(sc.SCOPES)}",
                    reason="INVALID_SCOPE",
                )
            beyond = [s for s in wanted if s not in held]
            if beyond:
                raise InvalidArgumentError(
                    f"scope {beyond[0]} is beyond the role of {account.name} ({' '.join(held)})",
                    reason="INVALID_SCOPE",
                )
            granted = tuple(s for s in sc.SCOPES if s in wanted)
        token, expires_in = self.signer.issue_for(
            account.name, account.tenant, granted, sc.DEFAULT_TIER, self.jwt_ttl
        )
        await self.audit.record(
            tenant=account.tenant,
            actor=account.name,
            actor_credential=account.id,
            action="oauth2.token.issue",
            target=account.name,
            origin=origin,
            details={"scope": " ".join(granted), "expires_in": str(expires_in)},
        )
        reply = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(granted),
        }
        return json.dumps(reply).encode()

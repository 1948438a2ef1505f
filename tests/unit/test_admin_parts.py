"""The pure parts of users, roles, the audit filter and the OAuth 2.0 request parsing."""

from __future__ import annotations

import base64

import pytest

from ragline_auth import roles
from ragline_auth import scopes as sc
from ragline_auth.audit import audit_query, parse_filter
from ragline_auth.oauth2 import client_of, parse_form
from ragline_core.errors import InvalidArgumentError, UnauthenticatedError

FORM = "application/x-www-form-urlencoded"


def test_role_table():
    assert roles.scopes_of(roles.OWNER) == sc.SCOPES == roles.scopes_of(roles.ADMIN)
    assert sc.ADMIN not in roles.scopes_of(roles.MEMBER)
    assert roles.scopes_of(roles.VIEWER) == (sc.SEARCH, sc.CHAT, sc.ANALYTICS)
    assert roles.beyond(roles.VIEWER, ["ingest", "search", "admin"]) == ["ingest", "admin"]
    assert roles.beyond("no-such-role", ["search"]) == ["search"]
    # Owners manage everyone; admins everyone but owners; members and viewers nobody.
    assert roles.may_manage(roles.OWNER, roles.OWNER)
    assert roles.may_manage(roles.ADMIN, roles.ADMIN)
    assert not roles.may_manage(roles.ADMIN, roles.OWNER)
    assert not roles.may_manage(roles.MEMBER, roles.VIEWER)
    # Every role's scopes are real scopes; the roles go from most to least.
    sizes = [len(roles.scopes_of(r)) for r in roles.ROLES]
    assert sizes == sorted(sizes, reverse=True)
    assert all(set(roles.scopes_of(r)) <= set(sc.SCOPES) for r in roles.ROLES)


def test_filters_take_the_aip160_subset():
    allowed = {"role": ("=",), "email": ("=",)}
    assert parse_filter("", allowed) == []
    assert parse_filter('role = ROLE_ADMIN AND email = "a b@x.y"', allowed) == [
        ("role", "=", "ROLE_ADMIN"),
        ("email", "=", "a b@x.y"),
    ]
    # Form-style query encoding: `+` is a space outside quotes, kept inside them.
    assert parse_filter('role+=+ROLE_ADMIN+AND+email+=+"a+b@x.y"', allowed) == [
        ("role", "=", "ROLE_ADMIN"),
        ("email", "=", "a+b@x.y"),
    ]
    for bad, words in (
        ("colour = red", "colour"),
        ("role >= ROLE_ADMIN", ">="),
        ("role", "field = value"),
        ("role = a OR role = b", "field = value"),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            parse_filter(bad, allowed)
        assert caught.value.reason == "INVALID_FILTER" and words in caught.value.message


def test_audit_filter_becomes_a_query():
    query = audit_query(
        'action = "user.delete" AND create_time >= "2026-12-01T00:00:00Z" '
        'AND create_time < "2026-12-02T00:00:00Z"'
    )
    assert query["action"] == "user.delete"
    assert set(query["created_at"]) == {"$gte", "$lt"}
    with pytest.raises(InvalidArgumentError, match="RFC 3339"):
        audit_query("create_time > yesterday")


def test_token_form_is_parsed_strictly():
    assert parse_form(FORM + "; charset=utf-8", b"grant_type=client_credentials&scope=a+b") == {
        "grant_type": "client_credentials",
        "scope": "a b",
    }
    for content_type, body, words in (
        ("application/json", b"{}", "application/x-www-form-urlencoded"),
        (FORM, b"grant_type=a&grant_type=b", "more than once"),
        (FORM, b"x" * 5000, "longer"),
        (FORM, b"\xff=1", "not a valid form"),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            parse_form(content_type, body)
        assert caught.value.reason == "INVALID_REQUEST" and words in caught.value.message


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_client_credentials_come_from_basic_or_the_form_once():
    assert client_of({}, _basic("sa_1:s3cret")) == ("sa_1", "s3cret")
    # RFC 6749 section 2.3.1: form-encoded before the Basic encoding.
    assert client_of({}, _basic("sa_1:a%3Ab+c")) == ("sa_1", "a:b c")
    assert client_of({"client_id": "sa_1", "client_secret": "x"}, "") == ("sa_1", "x")
    with pytest.raises(InvalidArgumentError):
        client_of({"client_id": "sa_1"}, _basic("sa_1:x"))
    for form, header in (({}, ""), ({}, _basic("no-colon")), ({}, "Basic %%%"), ({}, "Bearer x")):
        with pytest.raises(UnauthenticatedError) as caught:
            client_of(form, header)
        assert caught.value.reason == "INVALID_CLIENT"

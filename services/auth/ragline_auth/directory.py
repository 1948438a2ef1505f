"""Users and service accounts of the tenants, in MongoDB (`users`, `service_accounts`).

Everything is read by `_id` on the hot paths (FerretDB indexes nothing else): a user or an
account by its id, an e-mail address's claim by `_id` = tenant + address. The claim is what
keeps addresses unique per tenant without a transaction: it is inserted before the user
(a duplicate `_id` is the conflict) and dropped when the user is deleted. Deleted users and
accounts stay, marked `deleted`, for the audit log.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ragline_auth import roles
from ragline_auth import scopes as sc
from ragline_auth.keys import MAX_PAGE_SIZE, KeyHasher, decode_page_token, encode_page_token
from ragline_core.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    quoted,
)

USER_PREFIX = "users/"
ACCOUNT_PREFIX = "serviceAccounts/"
ACTIVE = "active"
DELETED = "deleted"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Member:
    """A user or a service account: someone who can own keys, with a role in a tenant."""

    id: str
    kind: str  # "user" or "service_account"
    tenant: str
    role: str
    state: str
    created_at: datetime
    updated_at: datetime
    email: str = ""
    display_name: str = ""
    deleted_at: datetime | None = None
    secret_digest: str = ""  # service accounts: HMAC of the client secret
    # A rotated secret keeps working until then (its HMAC beside).
    previous_digest: str = ""
    previous_expires_at: datetime | None = None

    @property
    def name(self) -> str:
        return (USER_PREFIX if self.kind == "user" else ACCOUNT_PREFIX) + self.id

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def scopes(self) -> tuple[str, ...]:
        return roles.scopes_of(self.role)


def _from_doc(doc: dict[str, Any], kind: str) -> Member:
    return Member(
        id=doc["_id"],
        kind=kind,
        tenant=doc["tenant"],
        role=doc["role"],
        state=doc.get("state", ACTIVE),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
        email=doc.get("email", ""),
        display_name=doc.get("display_name", ""),
        deleted_at=doc.get("deleted_at"),
        secret_digest=doc.get("secret_digest", ""),
        previous_digest=doc.get("previous_secret_digest", ""),
        previous_expires_at=doc.get("previous_secret_expires_at"),
    )


def split_name(name: str, prefix: str, field: str = "name") -> str:
    """The id in a resource name such as "users/usr_1"; a 400 naming the field otherwise."""
    ident = name[len(prefix) :] if name.startswith(prefix) else ""
    if not _ID.match(ident):
        raise InvalidArgumentError(
            f"{field} must look like '{prefix}<id>', not {quoted(name)}",
            reason="INVALID_NAME",
            field=field,
        )
    return ident


def check_role(role: str, field: str = "role") -> None:
    if role not in roles.ROLES:
        raise InvalidArgumentError(
            "role is required: one of ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER",
            reason="INVALID_ROLE",
            field=field,
        )


def check_tenant(tenant: str) -> None:
    if not sc.TENANT_RE.match(tenant):
        raise InvalidArgumentError(
            "tenant must be 1-64 letters, digits, '_', '.' or '-'",
            reason="INVALID_TENANT",
            field="tenant",
        )


class Directory:
    """The users and service accounts of every tenant."""

    def __init__(
        self,
        users: AsyncCollection[dict[str, Any]],
        accounts: AsyncCollection[dict[str, Any]],
        hasher: KeyHasher,
    ) -> None:
        self.users = users
        self.emails: AsyncCollection[dict[str, Any]] = users.database[f"{users.name}_emails"]
        self.accounts = accounts
        self.hasher = hasher

    async def setup(self) -> None:
        for collection in (self.users, self.accounts):
            await collection.create_index([("tenant", ASCENDING), ("created_at", ASCENDING)])

    # -- users ---------------------------------------------------------------------------
    async def create_user(self, tenant: str, email: str, role: str, display_name: str) -> Member:
        check_tenant(tenant)
        email = email.strip()
        if not _EMAIL.match(email):
            raise InvalidArgumentError(
                f"email {quoted(email)} is not an e-mail address",
                reason="INVALID_EMAIL",
                field="user.email",
            )
        check_role(role, "user.role")
        if len(display_name) > 200:
            raise InvalidArgumentError(
                "display_name is longer than 200 characters", field="user.display_name"
            )
        now = datetime.now(UTC)
        user_id = f"usr_{secrets.token_hex(8)}"
        claim = _email_claim(tenant, email)
        try:
            await self.emails.insert_one({"_id": claim, "user_id": user_id})
        except DuplicateKeyError:
            raise AlreadyExistsError(
                f"tenant {tenant!r} has a user with e-mail {quoted(email)} already",
                reason="USER_EXISTS",
                field="user.email",
            ) from None
        doc = {
            "_id": user_id,
            "tenant": tenant,
            "email": email,
            "role": role,
            "display_name": display_name,
            "state": ACTIVE,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
        }
        try:
            await self.users.insert_one(doc)
        except BaseException:
            await self.emails.delete_one({"_id": claim, "user_id": user_id})
            raise
        return _from_doc(doc, "user")

    async def find(self, name: str) -> Member | None:
        """A user or service account by resource name (deleted ones too); None if unknown."""
        if name.startswith(USER_PREFIX):
            doc = await self.users.find_one({"_id": name[len(USER_PREFIX) :]})
            return _from_doc(doc, "user") if doc else None
        if name.startswith(ACCOUNT_PREFIX):
            doc = await self.accounts.find_one({"_id": name[len(ACCOUNT_PREFIX) :]})
            return _from_doc(doc, "service_account") if doc else None
        return None

    async def get_user(self, user_id: str) -> Member:
        doc = await self.users.find_one({"_id": user_id})
        if doc is None:
            raise NotFoundError(f"no user 'users/{user_id}'", reason="USER_NOT_FOUND")
        return _from_doc(doc, "user")

    async def list_users(
        self,
        tenant: str,
        conditions: dict[str, str],
        show_deleted: bool,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Member], str]:
        query: dict[str, Any] = {"tenant": tenant, **conditions}
        if not show_deleted and "state" not in conditions:
            query["state"] = ACTIVE
        return await _page(self.users, query, "user", page_size, page_token)

    async def update_user(self, user_id: str, changes: dict[str, Any]) -> Member:
        changes = {**changes, "updated_at": datetime.now(UTC)}
        await self.users.update_one({"_id": user_id, "state": ACTIVE}, {"$set": changes})
        return await self.get_user(user_id)

    async def mark_deleted(self, member: Member) -> Member:
        """Marks a user or account deleted first (so no key can be added to it after this),
        then frees its e-mail address."""
        now = datetime.now(UTC)
        collection = self.users if member.kind == "user" else self.accounts
        await collection.update_one(
            {"_id": member.id},
            {"$set": {"state": DELETED, "deleted_at": now, "updated_at": now}},
        )
        if member.kind == "user":
            await self.emails.delete_one(
                {"_id": _email_claim(member.tenant, member.email), "user_id": member.id}
            )
        found = await self.find(member.name)
        assert found is not None
        return found

    # -- service accounts ----------------------------------------------------------------
    async def create_account(self, tenant: str, role: str, display_name: str) -> tuple[Member, str]:
        """A new account and its client secret (shown once; only its HMAC is stored)."""
        check_tenant(tenant)
        check_role(role, "service_account.role")
        if len(display_name) > 200:
            raise InvalidArgumentError(
                "display_name is longer than 200 characters",
                field="service_account.display_name",
            )
        now = datetime.now(UTC)
        secret = f"rls_{secrets.token_urlsafe(32)}"
        doc = {
            "_id": f"sa_{secrets.token_hex(8)}",
            "tenant": tenant,
            "role": role,
            "display_name": display_name,
            "state": ACTIVE,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "secret_digest": self.hasher.digest(secret),
        }
        await self.accounts.insert_one(doc)
        return _from_doc(doc, "service_account"), secret

    async def get_account(self, account_id: str) -> Member:
        doc = await self.accounts.find_one({"_id": account_id})
        if doc is None:
            raise NotFoundError(
                f"no service account 'serviceAccounts/{account_id}'",
                reason="SERVICE_ACCOUNT_NOT_FOUND",
            )
        return _from_doc(doc, "service_account")

    async def list_accounts(
        self, tenant: str, show_deleted: bool, page_size: int, page_token: str
    ) -> tuple[list[Member], str]:
        query: dict[str, Any] = {"tenant": tenant}
        if not show_deleted:
            query["state"] = ACTIVE
        return await _page(self.accounts, query, "service_account", page_size, page_token)

    async def authenticate_client(self, client_id: str, secret: str) -> Member | None:
        """The active account whose id and secret these are; None otherwise."""
        if not _ID.match(client_id) or not client_id.startswith("sa_") or len(secret) > 256:
            return None
        doc = await self.accounts.find_one({"_id": client_id})
        if doc is None:
            return None
        account = _from_doc(doc, "service_account")
        if not account.active:
            return None
        digest = self.hasher.digest(secret)
        if self.hasher.same(account.secret_digest, digest):
            return account
        previous = account.previous_expires_at
        if (
            account.previous_digest
            and previous is not None
            and _aware(previous) > datetime.now(UTC)
            and self.hasher.same(account.previous_digest, digest)
        ):
            return account
        return None

    async def rotate_secret(self, account: Member, grace_s: int) -> tuple[Member, str]:
        """A new client secret; the old one works `grace_s` seconds more (0: not at all)."""
        now = datetime.now(UTC)
        secret = f"rls_{secrets.token_urlsafe(32)}"
        await self.accounts.update_one(
            {"_id": account.id},
            {
                "$set": {
                    "secret_digest": self.hasher.digest(secret),
                    "previous_secret_digest": account.secret_digest if grace_s else "",
                    "previous_secret_expires_at": now + timedelta(seconds=grace_s)
                    if grace_s
                    else None,
                    "updated_at": now,
                }
            },
        )
        return await self.get_account(account.id), secret


def _aware(when: datetime) -> datetime:
    """MongoDB returns naive UTC datetimes unless the client is tz-aware."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _email_claim(tenant: str, email: str) -> str:
    return f"{tenant}\x1f{email.lower()}"


async def _page(
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    kind: str,
    page_size: int,
    page_token: str,
) -> tuple[list[Member], str]:
    size = page_size or 50
    if size < 0 or size > MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
        )
    offset = decode_page_token(page_token)
    cursor = (
        collection.find(query)
        .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        .skip(offset)
        .limit(size + 1)
    )
    docs = [doc async for doc in cursor]
    members = [_from_doc(d, kind) for d in docs[:size]]
    return members, encode_page_token(offset + size) if len(docs) > size else ""

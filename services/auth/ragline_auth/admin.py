"""Administrative actions with their rules: who may manage which tenant, user, account and
key; keys never exceed their owner's role; every change written to the audit log.

The caller is resolved to an *actor* on every action, from the credential's owner as stored
now (not from the scopes a token was minted with): a user demoted a second ago can no longer
manage anyone, even with a JWT minted before.

No transactions (FerretDB, and the portable MongoDB subset): the invariants "no key outlives
its deleted owner" and "no key exceeds its owner's role" hold by ordering single-document
writes. Deleting or demoting an owner writes the owner first, then revokes or narrows its
keys; creating (or rotating) a key writes the key first, then reads the owner again and
revokes the new key if the owner changed meanwhile. Whatever the interleaving, one of the
two sides sees the other's write. tests/integration/test_admin_concurrency.py races them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragline_auth import roles
from ragline_auth import scopes as sc
from ragline_auth.audit import AuditEvent, AuditLog, Origin, parse_filter
from ragline_auth.directory import (
    ACCOUNT_PREFIX,
    ACTIVE,
    USER_PREFIX,
    Directory,
    Member,
    check_tenant,
    split_name,
)
from ragline_auth.keys import ApiKey, KeyService, NewKey
from ragline_auth.oidc import SUBJECT_PREFIX
from ragline_core.caller import Caller
from ragline_core.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    quoted,
)

ROLE_NAMES = {r: f"ROLE_{r.upper()}" for r in roles.ROLES}


@dataclass(frozen=True)
class Actor:
    """Who performs an administrative action."""

    name: str  # "users/…", "serviceAccounts/…" or roles.OPERATOR
    tenant: str
    role: str
    scopes: tuple[str, ...]  # the credential's
    credential: str  # API key id or token subject
    operator: bool

    def sees(self, tenant: str) -> bool:
        return self.operator or tenant == self.tenant

    def manages(self, role: str) -> bool:
        return self.operator or roles.may_manage(self.role, role)


def _denied_role(actor: Actor, role: str, what: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"{what} needs a higher role than {ROLE_NAMES.get(actor.role, actor.role)}: only an "
        f"owner manages users and keys of role {ROLE_NAMES.get(role, role)}",
        reason="ROLE_TOO_LOW",
    )


def _tenant_not_found(tenant: str) -> NotFoundError:
    # 404, not 403: whether another tenant exists is not the caller's business.
    return NotFoundError(f"no tenant {tenant!r}", reason="TENANT_NOT_FOUND")


def _key_not_found(key_id: str) -> NotFoundError:
    return NotFoundError(f"no API key {key_id!r}", reason="KEY_NOT_FOUND")


class Admin:
    def __init__(self, keys: KeyService, directory: Directory, audit: AuditLog) -> None:
        self.keys = keys
        self.directory = directory
        self.audit = audit

    # -- who is acting -------------------------------------------------------------------
    async def actor(self, caller: Caller, *, need_admin: bool = True) -> Actor:
        if need_admin and sc.ADMIN not in caller.scopes:
            raise PermissionDeniedError(
                "this action needs the 'admin' scope", reason="SCOPE_DENIED"
            )
        subject = caller.key_id
        if caller.method == "oidc" and subject.startswith(SUBJECT_PREFIX):
            # An SSO caller: its role travels signed in the subject ("oidc:<role>:<sub>").
            role, _, sub = subject[len(SUBJECT_PREFIX) :].partition(":")
            if sc.ADMIN not in roles.scopes_of(role):
                raise PermissionDeniedError(
                    f"role {ROLE_NAMES.get(role, role)} has no 'admin' scope", reason="SCOPE_DENIED"
                )
            return Actor(f"ssoUsers/{sub}", caller.tenant, role, caller.scopes, subject, False)
        if subject.startswith(ACCOUNT_PREFIX):  # a client-credentials token
            return self._member_actor(await self.directory.find(subject), caller, subject)
        try:
            key = await self.keys.get(subject)
        except NotFoundError:
            # Only a holder of INTERNAL_TOKEN_KEYS (a service, a test) can name no stored
            # key: fully trusted already, as the operator.
            return Actor(roles.OPERATOR, caller.tenant, roles.OWNER, caller.scopes, subject, True)
        if key.owner == roles.OPERATOR:
            return Actor(roles.OPERATOR, key.tenant, roles.OWNER, caller.scopes, subject, True)
        return self._member_actor(await self.directory.find(key.owner), caller, subject)

    @staticmethod
    def _member_actor(member: Member | None, caller: Caller, subject: str) -> Actor:
        if member is None or not member.active:
            raise UnauthenticatedError(
                "the credential's user or service account was deleted", reason="OWNER_DELETED"
            )
        actor = Actor(member.name, member.tenant, member.role, caller.scopes, subject, False)
        if sc.ADMIN in caller.scopes and sc.ADMIN not in member.scopes:
            # A token minted before a demotion still says "admin"; the role decides.
            raise PermissionDeniedError(
                f"role {ROLE_NAMES[member.role]} of {member.name} has no 'admin' scope",
                reason="SCOPE_DENIED",
            )
        return actor

    async def is_operator(self, caller: Caller) -> bool:
        try:
            return (await self.actor(caller, need_admin=False)).operator
        except (UnauthenticatedError, PermissionDeniedError):
            return False

    def _tenant(self, actor: Actor, tenant: str) -> str:
        tenant = tenant or actor.tenant
        if not actor.sees(tenant):
            raise _tenant_not_found(tenant)
        return tenant

    # -- keys ----------------------------------------------------------------------------
    async def _owner(self, actor: Actor, owner: str, tenant: str) -> tuple[str, str]:
        """(owner name, owner role) of a key to be created in `tenant`."""
        owner = owner or actor.name
        if owner == roles.OPERATOR:
            if not actor.operator:
                raise NotFoundError(f"no owner {quoted(owner)}", reason="OWNER_NOT_FOUND")
            return owner, roles.OWNER
        if not owner.startswith((USER_PREFIX, ACCOUNT_PREFIX)):
            raise InvalidArgumentError(
                f"owner must be 'users/<id>' or 'serviceAccounts/<id>', not {quoted(owner)}",
                reason="INVALID_NAME",
                field="owner",
            )
        member = await self.directory.find(owner)
        if member is None or not member.active or member.tenant != tenant:
            raise NotFoundError(
                f"no active user or service account {quoted(owner)} in tenant {tenant!r}",
                reason="OWNER_NOT_FOUND",
            )
        if member.name != actor.name and not actor.manages(member.role):
            raise _denied_role(actor, member.role, "a key for this owner")
        return owner, member.role

    @staticmethod
    def _within(actor: Actor, owner: str, role: str, scopes: Sequence[str]) -> None:
        extra = roles.beyond(role, list(scopes))
        if extra:
            raise PermissionDeniedError(
                f"scope {extra[0]!r} is beyond role {ROLE_NAMES[role]} of {owner}: a key never "
                f"exceeds its owner's scopes ({', '.join(roles.scopes_of(role))})",
                reason="SCOPE_EXCEEDS_ROLE",
                metadata={"scope": extra[0], "owner": owner, "role": ROLE_NAMES[role]},
            )
        if not actor.operator:
            mine = [s for s in sc.SCOPES if s in scopes and s not in actor.scopes]
            if mine:
                raise PermissionDeniedError(
                    f"scope {mine[0]!r} is beyond the caller's own credential: nobody grants "
                    "a scope they do not hold",
                    reason="SCOPE_EXCEEDS_CALLER",
                    metadata={"scope": mine[0]},
                )

    async def _confirm_owner(self, key: ApiKey) -> None:
        """After a key is written: its owner must still exist with a role that covers it
        (else a concurrent delete or demotion may have missed it): revoke it otherwise."""
        if key.owner == roles.OPERATOR:
            return
        member = await self.directory.find(key.owner)
        if member is None or not member.active or roles.beyond(member.role, list(key.scopes)):
            await self.keys.revoke(key.key_id)
            raise ConflictError(
                f"{key.owner} was deleted or lost scopes while the key was made; no key was "
                "created",
                reason="OWNER_CHANGED",
            )

    async def create_key(
        self,
        actor: Actor,
        origin: Origin,
        *,
        tenant: str,
        scopes: Sequence[str],
        owner: str,
        **options: Any,
    ) -> NewKey:
        if not tenant and not actor.operator:
            tenant = actor.tenant
        if tenant and not actor.sees(tenant):
            raise _tenant_not_found(tenant)
        if tenant:
            check_tenant(tenant)
        owner, role = await self._owner(actor, owner, tenant)
        self._within(actor, owner, role, scopes)
        new = await self.keys.create(tenant, scopes, owner=owner, **options)
        await self._confirm_owner(new.record)
        await self._record(
            actor,
            origin,
            tenant,
            "api_key.create",
            f"apiKeys/{new.record.key_id}",
            {"owner": owner, "scopes": ",".join(new.record.scopes)},
        )
        return new

    async def visible_key(self, actor: Actor, key_id: str) -> ApiKey:
        try:
            key = await self.keys.get(key_id)
        except NotFoundError:
            raise _key_not_found(key_id) from None
        if not actor.sees(key.tenant):
            raise _key_not_found(key_id)
        return key

    async def _manageable_key(self, actor: Actor, key_id: str) -> ApiKey:
        key = await self.visible_key(actor, key_id)
        if key.owner == actor.name or actor.operator:
            return key
        if key.owner == roles.OPERATOR:
            raise PermissionDeniedError(
                "this key belongs to the operator; only the operator manages it",
                reason="ROLE_TOO_LOW",
            )
        member = await self.directory.find(key.owner)
        if member is not None and not actor.manages(member.role):
            raise _denied_role(actor, member.role, "managing this key")
        return key

    async def list_keys(
        self, actor: Actor, tenant: str, owner: str, page_size: int, page_token: str
    ) -> tuple[list[ApiKey], str]:
        if not actor.operator:
            tenant = self._tenant(actor, tenant)
        return await self.keys.list(tenant, page_size, page_token, owner)

    async def rotate_key(
        self, actor: Actor, origin: Origin, key_id: str, grace_s: int
    ) -> tuple[NewKey, ApiKey]:
        key = await self._manageable_key(actor, key_id)
        if key.owner != roles.OPERATOR:
            member = await self.directory.find(key.owner)
            if member is not None and member.active:
                self._within(actor, key.owner, member.role, key.scopes)
        new, old = await self.keys.rotate(key_id, grace_s)
        await self._confirm_owner(new.record)
        await self._record(
            actor,
            origin,
            key.tenant,
            "api_key.rotate",
            f"apiKeys/{key_id}",
            {"new_key": new.record.key_id, "expire_time": old.expires_at.isoformat()}
            if old.expires_at
            else {"new_key": new.record.key_id},
        )
        return new, old

    async def revoke_key(self, actor: Actor, origin: Origin, key_id: str) -> ApiKey:
        await self._manageable_key(actor, key_id)
        revoked = await self.keys.revoke(key_id)
        await self._record(actor, origin, revoked.tenant, "api_key.revoke", f"apiKeys/{key_id}")
        return revoked

    async def _revoke_all(self, owner: str) -> int:
        keys = await self.keys.of_owner(owner)
        for key in keys:
            await self.keys.revoke(key.key_id)
        return len(keys)

    # -- users and service accounts ------------------------------------------------------
    async def create_user(
        self, actor: Actor, origin: Origin, tenant: str, email: str, role: str, display_name: str
    ) -> Member:
        tenant = self._tenant(actor, tenant)
        if role in roles.ROLES and not actor.manages(role):
            raise _denied_role(actor, role, "creating a user")
        user = await self.directory.create_user(tenant, email, role, display_name)
        await self._record(
            actor,
            origin,
            tenant,
            "user.create",
            user.name,
            {"email": user.email, "role": ROLE_NAMES[role]},
        )
        return user

    async def _keep_an_owner(self, member: Member) -> None:
        """A tenant never loses its last owner (only the operator could then manage it)."""
        if member.kind != "user" or member.role != roles.OWNER:
            return
        owners, _ = await self.directory.list_users(
            member.tenant, {"role": roles.OWNER}, False, 2, ""
        )
        if len([o for o in owners if o.id != member.id]) == 0:
            raise FailedPreconditionError(
                f"{member.name} is the last owner of tenant {member.tenant!r}; make another "
                "user an owner first",
                reason="LAST_OWNER",
            )

    async def visible_member(self, actor: Actor, name: str, kind: str) -> Member:
        prefix = USER_PREFIX if kind == "user" else ACCOUNT_PREFIX
        ident = split_name(name, prefix)
        if kind == "user":
            member = await self.directory.get_user(ident)
        else:
            member = await self.directory.get_account(ident)
        if not actor.sees(member.tenant):
            # The same answer as an unknown id: other tenants' users do not exist here.
            if kind == "user":
                raise NotFoundError(f"no user {name!r}", reason="USER_NOT_FOUND")
            raise NotFoundError(f"no service account {name!r}", reason="SERVICE_ACCOUNT_NOT_FOUND")
        return member

    async def list_users(
        self,
        actor: Actor,
        tenant: str,
        filter_text: str,
        show_deleted: bool,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Member], str]:
        tenant = self._tenant(actor, tenant)
        conditions: dict[str, str] = {}
        fields: dict[str, tuple[str, ...]] = {"role": ("=",), "state": ("=",), "email": ("=",)}
        for name, _, value in parse_filter(filter_text, fields):
            conditions[name] = _filter_value(name, value)
        return await self.directory.list_users(
            tenant, conditions, show_deleted, page_size, page_token
        )

    async def update_user(
        self,
        actor: Actor,
        origin: Origin,
        name: str,
        role: str | None,
        display_name: str | None,
    ) -> Member:
        user = await self.visible_member(actor, name, "user")
        if not user.active:
            raise NotFoundError(f"no user {name!r}", reason="USER_NOT_FOUND")
        if not actor.manages(user.role) and user.name != actor.name:
            raise _denied_role(actor, user.role, "changing this user")
        changes: dict[str, Any] = {}
        details: dict[str, str] = {}
        if role is not None and role != user.role:
            if not actor.manages(user.role) or not actor.manages(role):
                raise _denied_role(
                    actor, role if actor.manages(user.role) else user.role, "this role change"
                )
            await self._keep_an_owner(user)
            changes["role"] = role
            details.update(role=ROLE_NAMES[role], previous_role=ROLE_NAMES[user.role])
        if display_name is not None and display_name != user.display_name:
            if len(display_name) > 200:
                raise InvalidArgumentError(
                    "display_name is longer than 200 characters", field="user.display_name"
                )
            changes["display_name"] = display_name
            details["display_name"] = display_name
        if not changes:
            return user
        updated = await self.directory.update_user(user.id, changes)
        if "role" in changes:
            # The role is written first; then no key may keep a scope it no longer holds.
            narrowed = revoked = 0
            held = set(roles.scopes_of(role or ""))
            for key in await self.keys.of_owner(user.name):
                kept = tuple(s for s in key.scopes if s in held)
                if kept == key.scopes:
                    continue
                if kept:
                    await self.keys.narrow(key, kept)
                    narrowed += 1
                else:
                    await self.keys.revoke(key.key_id)
                    revoked += 1
            details.update(narrowed_keys=str(narrowed), revoked_keys=str(revoked))
        await self._record(actor, origin, user.tenant, "user.update", user.name, details)
        return updated

    async def delete_member(self, actor: Actor, origin: Origin, name: str, kind: str) -> Member:
        member = await self.visible_member(actor, name, kind)
        if not member.active:
            raise NotFoundError(
                f"no {'user' if kind == 'user' else 'service account'} {name!r}",
                reason="USER_NOT_FOUND" if kind == "user" else "SERVICE_ACCOUNT_NOT_FOUND",
            )
        if member.name == actor.name:
            raise InvalidArgumentError(
                "a user or service account cannot delete itself; ask another admin",
                reason="CANNOT_DELETE_SELF",
                field="name",
            )
        if not actor.manages(member.role):
            raise _denied_role(actor, member.role, "deleting this user")
        await self._keep_an_owner(member)
        # Marked deleted first: a key created from now on sees it and is revoked.
        deleted = await self.directory.mark_deleted(member)
        revoked = await self._revoke_all(member.name)
        action = "user.delete" if kind == "user" else "service_account.delete"
        await self._record(
            actor, origin, member.tenant, action, member.name, {"revoked_keys": str(revoked)}
        )
        return deleted

    async def create_account(
        self, actor: Actor, origin: Origin, tenant: str, role: str, display_name: str
    ) -> tuple[Member, str]:
        tenant = self._tenant(actor, tenant)
        if role in roles.ROLES and not actor.manages(role):
            raise _denied_role(actor, role, "creating a service account")
        account, secret = await self.directory.create_account(tenant, role, display_name)
        await self._record(
            actor,
            origin,
            tenant,
            "service_account.create",
            account.name,
            {"role": ROLE_NAMES[role]},
        )
        return account, secret

    async def rotate_secret(
        self, actor: Actor, origin: Origin, name: str, grace_s: int
    ) -> tuple[Member, str]:
        account = await self.visible_member(actor, name, "service_account")
        if not account.active:
            raise NotFoundError(f"no service account {name!r}", reason="SERVICE_ACCOUNT_NOT_FOUND")
        if account.name != actor.name and not actor.manages(account.role):
            raise _denied_role(actor, account.role, "rotating this account's secret")
        if grace_s < 0 or grace_s > 30 * 86_400:
            raise InvalidArgumentError(
                "grace_period_seconds must be between 0 and 2592000 (30 days)",
                field="grace_period_seconds",
            )
        rotated, secret = await self.directory.rotate_secret(account, grace_s)
        await self._record(
            actor,
            origin,
            account.tenant,
            "service_account.rotate_secret",
            account.name,
            {"grace_period_seconds": str(grace_s)},
        )
        return rotated, secret

    async def list_accounts(
        self, actor: Actor, tenant: str, show_deleted: bool, page_size: int, page_token: str
    ) -> tuple[list[Member], str]:
        tenant = self._tenant(actor, tenant)
        return await self.directory.list_accounts(tenant, show_deleted, page_size, page_token)

    # -- audit ---------------------------------------------------------------------------
    async def list_audit(
        self, actor: Actor, tenant: str, filter_text: str, page_size: int, page_token: str
    ) -> tuple[list[AuditEvent], str]:
        if actor.operator and not tenant:
            return await self.audit.list(None, filter_text, page_size, page_token)
        return await self.audit.list(
            self._tenant(actor, tenant), filter_text, page_size, page_token
        )

    async def _record(
        self,
        actor: Actor,
        origin: Origin,
        tenant: str,
        action: str,
        target: str,
        details: dict[str, str] | None = None,
    ) -> None:
        await self.audit.record(
            tenant=tenant,
            actor=actor.name,
            actor_credential=actor.credential,
            action=action,
            target=target,
            origin=origin,
            details=details,
        )


def _filter_value(name: str, value: str) -> str:
    if name == "role":
        role = value.lower().removeprefix("role_")
        if role not in roles.ROLES:
            raise InvalidArgumentError(
                f"role {quoted(value)} is not ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER or ROLE_VIEWER",
                reason="INVALID_FILTER",
                field="filter",
            )
        return role
    if name == "state":
        state = value.lower().removeprefix("user_state_")
        if state not in (ACTIVE, "deleted"):
            raise InvalidArgumentError(
                f"state {quoted(value)} is not USER_STATE_ACTIVE or USER_STATE_DELETED",
                reason="INVALID_FILTER",
                field="filter",
            )
        return state
    return value.strip()

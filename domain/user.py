"""User: a person or system that may call tuohu's API, with one role (measures §3 roles).

Users are event-sourced like everything else, so who was allowed to do what,
since when and on whose word is itself evidence. A user's id is the UUID v5 of
its name, and the name is the ``actor_id`` on every event the user causes.

The API token is never stored: only its hash (an argon2id string made by
``application.identity``), replaced when the token is rotated. A revoked user
stays revoked; its name cannot be given to someone else.

Lifecycle::

    active -(rotate token)-> active
    active -(revoke)-> revoked
"""

from __future__ import annotations

import re
import uuid
from uuid import UUID

from domain.base import Context, IllegalTransition, InvalidValue, TuohuAggregate, require_reason, require_text

CUSTOMER_MANAGER = "customer_manager"
PRODUCT_MANAGER = "product_manager"
OPERATIONS = "operations"
REVIEWER = "reviewer"
RISK_OFFICER = "risk_officer"
COMPLIANCE_AUDITOR = "compliance_auditor"
BRANCH_HEAD = "branch_head"
ADMIN = "admin"

ROLES = (CUSTOMER_MANAGER, PRODUCT_MANAGER, OPERATIONS, REVIEWER, RISK_OFFICER, COMPLIANCE_AUDITOR, BRANCH_HEAD, ADMIN)
"""The roles of the acquisition team (§3) plus the administrator, who manages users only."""

ACTIVE = "active"
REVOKED = "revoked"

NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?$"
"""1-64 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit
(no underscore: it separates the name from the secret in a token)."""

_NAME = re.compile(NAME_PATTERN, re.ASCII)
_NAMESPACE = uuid.UUID("0c1d7f52-8a8e-4bb4-a5a4-75736572730a")


def user_id(name: str) -> UUID:
    """The user's aggregate id: UUID v5 of the name."""
    return uuid.uuid5(_NAMESPACE, name)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid user name, else raise :class:`InvalidValue`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidValue("name", "must be 1-64 lowercase letters, digits, dots or hyphens, "
                                   f"starting and ending with a letter or digit; got {name!r}")
    return name


class User(TuohuAggregate):
    """Someone allowed to call the API in one role, for one branch where the role needs it."""

    TOPIC = "tuohu:User"

    class Added(TuohuAggregate.Created):
        """A user was given a role (and a branch) and a token, whose hash alone is kept."""

        name: str
        role: str
        branch: str | None
        token_hash: str

        def apply(self, user: User) -> None:
            user.name = self.name
            user.role = self.role
            user.branch = self.branch
            user.token_hash = self.token_hash
            user.status = ACTIVE
            user.added_by = self.actor_id

    class TokenRotated(TuohuAggregate.Event):
        """The user's token was replaced; the old one no longer works."""

        token_hash: str

        def apply(self, user: User) -> None:
            user.token_hash = self.token_hash

    class Revoked(TuohuAggregate.Event):
        """The user may no longer call the API, with the reason."""

        def apply(self, user: User) -> None:
            user.status = REVOKED

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    # ------------------------------------------------------------------ commands

    @classmethod
    def add(cls, ctx: Context, *, name: str, role: str, branch: str | None, token_hash: str) -> User:
        """Add a user. A branch head needs a branch (row-level access is by branch).

        Raises :class:`InvalidValue` for a bad name, role or branch.
        """
        check_name(name)
        if role not in ROLES:
            raise InvalidValue("role", f"must be one of {', '.join(ROLES)}; got {role!r}")
        branch = branch.strip() if isinstance(branch, str) and branch.strip() else None
        if role == BRANCH_HEAD and branch is None:
            raise InvalidValue("branch", "a branch head needs the branch they head")
        return cls._start(cls.Added, ctx, id=user_id(name), name=name, role=role, branch=branch,
                          token_hash=require_text(token_hash, "token_hash"))

    def rotate_token(self, ctx: Context, *, token_hash: str) -> None:
        """Replace the token hash. Raises :class:`IllegalTransition` for a revoked user."""
        self._check_active("given a new token")
        self._record(self.TokenRotated, ctx, token_hash=require_text(token_hash, "token_hash"))

    def revoke(self, ctx: Context, *, reason: str | None) -> None:
        """Revoke, with the reason. Raises :class:`IllegalTransition` if already revoked."""
        self._check_active("revoked")
        self._record(self.Revoked, ctx, reason=require_reason(reason, "revoke a user"))

    def _check_active(self, action: str) -> None:
        if self.status != ACTIVE:
            raise IllegalTransition("user", action, self.status, (ACTIVE,))

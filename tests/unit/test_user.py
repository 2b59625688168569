"""User: who may call the API, in which role; added, given new tokens, revoked (measures §3 roles)."""

from __future__ import annotations

import uuid

import pytest

from domain.base import Context, IllegalTransition, InvalidValue, ReasonRequired
from domain.user import ROLES, User, user_id

ADMIN = Context(actor_id="admin-root", actor_role="admin")


def added(name: str = "mgr-li", role: str = "customer_manager", branch: str | None = "shanghai-pudong") -> User:
    user = User.add(ADMIN, name=name, role=role, branch=branch, token_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")
    user.collect_events()
    return user


def test_a_user_is_added_with_a_role_a_branch_and_a_token_hash():
    user = User.add(ADMIN, name="head-sun", role="branch_head", branch="shanghai-pudong", token_hash="$argon2id$x")
    [event] = user.collect_events()
    assert isinstance(event, User.Added)
    assert (event.name, event.role, event.branch, event.token_hash, event.actor_id) == (
        "head-sun", "branch_head", "shanghai-pudong", "$argon2id$x", "admin-root")
    assert (user.id, user.status, user.active, user.added_by) == (user_id("head-sun"), "active", True, "admin-root")


def test_a_users_id_is_derived_from_the_name_so_it_is_found_without_scanning():
    assert user_id("mgr-li") == uuid.uuid5(uuid.UUID("0c1d7f52-8a8e-4bb4-a5a4-75736572730a"), "mgr-li")
    assert user_id("mgr-li") != user_id("mgr-qian")


def test_the_roles_are_the_acquisition_team_and_the_administrator():
    assert set(ROLES) == {"customer_manager", "product_manager", "operations", "reviewer", "risk_officer",
                          "compliance_auditor", "branch_head", "admin"}


@pytest.mark.parametrize("name", ["", "Mgr-Li", "mgr_li", "-mgr", "mgr-", "a" * 65, "li na", "mgr/li"])
def test_a_user_name_is_lowercase_letters_digits_dots_and_hyphens(name):
    with pytest.raises(InvalidValue) as refused:
        User.add(ADMIN, name=name, role="reviewer", branch=None, token_hash="h")
    assert refused.value.field == "name"


def test_a_role_outside_the_list_is_refused():
    with pytest.raises(InvalidValue) as refused:
        User.add(ADMIN, name="cto", role="superuser", branch=None, token_hash="h")
    assert refused.value.field == "role"


def test_a_branch_head_needs_the_branch_they_head():
    with pytest.raises(InvalidValue) as refused:
        User.add(ADMIN, name="head-sun", role="branch_head", branch="  ", token_hash="h")
    assert refused.value.field == "branch"


def test_a_rotated_token_replaces_the_hash():
    user = added()
    user.rotate_token(ADMIN, token_hash="$argon2id$new")
    [event] = user.collect_events()
    assert isinstance(event, User.TokenRotated)
    assert user.token_hash == "$argon2id$new"


def test_a_user_is_revoked_with_the_reason():
    user = added()
    user.revoke(ADMIN, reason="left the bank")
    [event] = user.collect_events()
    assert isinstance(event, User.Revoked)
    assert (event.reason, user.status, user.active) == ("left the bank", "revoked", False)


def test_revoking_needs_a_reason():
    with pytest.raises(ReasonRequired):
        added().revoke(ADMIN, reason=" ")


def test_a_revoked_user_gets_no_new_token_and_is_not_revoked_twice():
    user = added()
    user.revoke(ADMIN, reason="left the bank")
    user.collect_events()
    with pytest.raises(IllegalTransition):
        user.rotate_token(ADMIN, token_hash="$argon2id$new")
    with pytest.raises(IllegalTransition):
        user.revoke(ADMIN, reason="again")
    assert user.collect_events() == []

"""API tokens and the authenticator: issued once, stored as argon2id hashes, verified with a cache.

Also the row-level rules of ``application.access``.
"""

from __future__ import annotations

import hashlib

import pytest

from application import NotFound, TuohuApplication
from application import identity
from application.access import (
    CustomerScope,
    OutsideYourScope,
    Principal,
    Unauthenticated,
    check_registration,
    check_unit,
    check_visible,
    scope_of,
)
from application.app import AlreadyExists
from domain.base import Context
from domain.user import user_id


def make_ctx(actor_id: str = "mgr-li", actor_role: str = "customer_manager", **kwargs) -> Context:
    return Context(actor_id=actor_id, actor_role=actor_role, **kwargs)


OPERATOR = make_ctx("cli:root", "operator", channel="cli")


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


def test_a_token_names_its_user_and_carries_192_random_bits():
    token = identity.new_token("mgr-li")
    prefix, secret = token.rsplit("_", 1)
    assert prefix == "tuohu_mgr-li"
    assert len(secret) == 48 and int(secret, 16) >= 0  # 48 hex digits
    assert identity.token_user(token) == "mgr-li"
    assert identity.new_token("mgr-li") != token


@pytest.mark.parametrize("token", ["", "Bearer x", "tuohu_mgr-li_", "tuohu_mgr-li_" + "g" * 48,
                                   "tuohu_Mgr_" + "a" * 48, "tuohu_mgr-li_" + "a" * 47, "tuohu__" + "a" * 48])
def test_a_malformed_token_names_no_user(token):
    assert identity.token_user(token) is None


def test_tokens_are_stored_as_argon2id_hashes_with_owasps_minimum_parameters():
    token = identity.new_token("mgr-li")
    stored = identity.hash_token(token)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert token not in stored
    assert identity.verify_token(stored, token)
    assert not identity.verify_token(stored, identity.new_token("mgr-li"))
    assert not identity.verify_token("not a hash", token)


def test_adding_a_user_issues_a_token_once_and_keeps_only_its_hash(app):
    issued = app.add_user(OPERATOR, name="mgr-li", role="customer_manager", branch="HQ")
    [added] = app.events.get(user_id("mgr-li"))
    assert identity.token_user(issued.token) == "mgr-li"
    assert issued.token not in repr(added.__dict__)
    assert identity.verify_token(added.token_hash, issued.token)
    assert (added.actor_id, added.channel) == ("cli:root", "cli")


def test_a_users_name_is_never_given_twice(app):
    app.add_user(OPERATOR, name="mgr-li", role="customer_manager")
    app.revoke_user(OPERATOR, "mgr-li", reason="left")
    with pytest.raises(AlreadyExists):
        app.add_user(OPERATOR, name="mgr-li", role="reviewer")


def test_a_repeated_add_with_its_command_id_shows_no_token_again(app):
    ctx = make_ctx("admin-root", "admin", command_id="add-mgr-li")
    first = app.add_user(ctx, name="mgr-li", role="customer_manager")
    again = app.add_user(ctx, name="mgr-li", role="customer_manager")
    assert (first.result.replayed, again.result.replayed) == (False, True)
    assert first.token is not None and again.token is None


def test_the_authenticator_turns_a_token_into_its_principal(app):
    token = app.add_user(OPERATOR, name="head-sun", role="branch_head", branch="HQ").token
    assert identity.Authenticator(app).authenticate(token) == Principal("head-sun", "branch_head", "HQ")


@pytest.mark.parametrize("token", [None, "", "tuohu_nobody_" + "a" * 48, "garbage"])
def test_a_missing_malformed_or_unknown_token_is_unauthenticated(app, token):
    with pytest.raises(Unauthenticated):
        identity.Authenticator(app).authenticate(token)


def test_a_wrong_secret_for_a_real_user_is_unauthenticated(app):
    app.add_user(OPERATOR, name="mgr-li", role="customer_manager")
    with pytest.raises(Unauthenticated):
        identity.Authenticator(app).authenticate(identity.new_token("mgr-li"))


def test_argon2_runs_once_per_token_and_user_version(app, monkeypatch):
    token = app.add_user(OPERATOR, name="mgr-li", role="customer_manager").token
    authenticator = identity.Authenticator(app)
    calls = []
    verify = identity.verify_token
    monkeypatch.setattr(identity, "verify_token", lambda h, t: calls.append(t) or verify(h, t))
    for _ in range(5):
        authenticator.authenticate(token)
    assert calls == [token]
    assert list(authenticator._cache) == [hashlib.sha256(token.encode()).hexdigest()]  # never the token itself


def test_a_revoked_or_rotated_token_fails_at_once_despite_the_cache(app):
    authenticator = identity.Authenticator(app)
    revoked = app.add_user(OPERATOR, name="mgr-li", role="customer_manager").token
    rotated = app.add_user(OPERATOR, name="mgr-qian", role="customer_manager").token
    authenticator.authenticate(revoked), authenticator.authenticate(rotated)
    app.revoke_user(OPERATOR, "mgr-li", reason="left the bank")
    new = app.rotate_user_token(OPERATOR, "mgr-qian").token
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(revoked)
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(rotated)
    assert authenticator.authenticate(new).name == "mgr-qian"


def test_users_are_listed_in_the_order_they_were_added(app):
    for name in ("mgr-li", "audit-he", "head-sun"):
        app.add_user(OPERATOR, name=name, role="branch_head", branch="HQ")
    assert [user.name for user in identity.users(app)] == ["mgr-li", "audit-he", "head-sun"]


# ---------------------------------------------------------------------- row-level access


def test_a_customer_manager_sees_their_own_customers_a_branch_head_their_branchs():
    assert scope_of(Principal("mgr-li", "customer_manager", "HQ")) == CustomerScope(manager_id="mgr-li")
    assert scope_of(Principal("head-sun", "branch_head", "HQ")) == CustomerScope(branch="HQ")
    for role in ("product_manager", "operations", "reviewer", "risk_officer", "compliance_auditor"):
        assert scope_of(Principal("x", role)) is None


def test_an_aggregate_of_another_managers_customer_is_not_found(app):
    customer_id = app.register_customer(make_ctx(), kind="retail", acquisition_channel="online", source_detail="web",
                                        segment="s", manager_id="mgr-li", branch="HQ").aggregate_id
    check_visible(app, Principal("mgr-li", "customer_manager"), "customer", customer_id)
    check_visible(app, Principal("head-sun", "branch_head", "HQ"), "customer", customer_id)
    with pytest.raises(NotFound, match=f"no customer with id {customer_id}"):
        check_visible(app, Principal("mgr-qian", "customer_manager"), "customer", customer_id)
    with pytest.raises(NotFound):
        check_visible(app, Principal("head-ma", "branch_head", "BJ"), "customer", customer_id)


def test_a_customer_manager_registers_only_for_themselves_in_their_branch():
    li = Principal("mgr-li", "customer_manager", "HQ")
    check_registration(li, "mgr-li", "HQ")
    with pytest.raises(OutsideYourScope):
        check_registration(li, "mgr-qian", "HQ")
    with pytest.raises(OutsideYourScope):
        check_registration(li, "mgr-li", "BJ")
    check_registration(Principal("ops", "operations"), "anyone", "anywhere")


def test_evaluations_are_read_for_ones_own_unit():
    check_unit(Principal("mgr-li", "customer_manager"), "person", "mgr-li")
    check_unit(Principal("head-sun", "branch_head", "HQ"), "branch", "HQ")
    check_unit(Principal("audit-he", "compliance_auditor"), "bank", "bank")
    with pytest.raises(OutsideYourScope):
        check_unit(Principal("mgr-li", "customer_manager"), "person", "mgr-qian")
    with pytest.raises(OutsideYourScope):
        check_unit(Principal("head-sun", "branch_head", "HQ"), "bank", "bank")

"""The permission matrix, end to end: every route × every role, allowed and denied, and row-level access.

Expected outcomes come from the matrix as the issue states it (customer managers
register customers, record facts, plan and record visits, draft proposals; product
managers approve proposals; ...), written here independently of
``interfaces.api.permissions`` and compared with it, then enforced over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_users import BRANCH, OTHER_BRANCH, STAFF, add_staff, as_, bearer, customer_world
from application import Settings
from domain.user import ROLES
from interfaces.api import create_app
from interfaces.api.permissions import PERMISSIONS, matrix_markdown, operations

ROOT = Path(__file__).resolve().parents[2]

CM, PM, OPS, REV, RISK, AUD, BH, ADMIN = ROLES
BUSINESS = {CM, PM, OPS, REV, RISK, AUD, BH}
ACTOR_OF_ROLE = {CM: "mgr-li", PM: "pm-zhao", OPS: "ops-liu", REV: "rev-wang", RISK: "risk-zhou", AUD: "audit-he",
                 BH: "head-sun", ADMIN: "admin-root"}
"""One user per role; the scoped ones (mgr-li, head-sun) own the customer every request is about."""

# The matrix as the issue words it; the README and interfaces.api.permissions must say the same.
EXPECTED: dict[str, set[str]] = {
    **{op: {CM} for op in ("register_customer", "record_facts", "record_credit_standing", "screen_customer",
                           "apply_for_account", "plan_visit", "prepare_visit", "conduct_visit", "route_visit_feedback",
                           "reschedule_visit", "cancel_visit", "present_proposal", "accept_proposal",
                           "decline_proposal", "draft_contract")},
    **{op: {CM, PM} for op in ("draft_proposal", "revise_proposal", "submit_proposal", "withdraw_proposal")},
    **{op: {PM} for op in ("approve_proposal", "return_proposal")},
    **{op: {REV} for op in ("review_customer", "review_contract_clauses", "resolve_contract_finding")},
    **{op: {OPS} for op in ("review_documents", "open_account", "sign_products", "report_business_figures")},
    "record_follow_up": {CM, OPS},
    "mark_key_customer": {CM, BH},
    **{op: {RISK} for op in ("identify_risk", "assess_risk", "decide_risk_response", "record_risk_reading",
                             "dispose_risk", "close_risk")},
    **{op: {BH} for op in ("reassign_manager", "approve_contract", "sign_contract", "terminate_contract", "join_team",
                           "record_training", "grant_award", "leave_team", "define_appraisal_scheme",
                           "redefine_appraisal_scheme", "set_target", "revise_target")},
    **{op: {ADMIN} for op in ("add_user", "rotate_user_token", "revoke_user")},
    **{op: BUSINESS for op in ("get_customer", "list_customers", "get_visit", "list_visits", "get_proposal",
                               "list_proposals", "get_contract", "list_contracts", "get_risk_case", "list_risk_cases",
                               "get_appraisal_scheme", "get_target", "funnel", "customers_report")},
    "get_staff": {AUD, BH},
    "visit_calendar": {CM, PM, OPS, AUD, BH},
    "overdue_follow_ups": {CM, OPS, AUD, BH},
    "proposals_pipeline": {CM, PM, AUD, BH},
    "contracts_pipeline": {CM, PM, REV, AUD, BH},
    "risk_register": {CM, RISK, AUD, BH},
    "evaluation": {CM, AUD, BH},
    "staff_performance": {AUD, BH},
    "list_users": {ADMIN, AUD},
    "get_user": {ADMIN, AUD},
    # compliance auditors read everything, history included
    **{op: {AUD} for op in ("audit_verify", "audit_actor_trail", "audit_explain", "audit_history", "audit_state")},
}
PUBLIC = {"health"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One API over one store: every user, mgr-li's world (branch head head-sun's branch) and
    mgr-zhou's world in another branch, a staff member, a scheme and a target."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("permissions"), database_url=None)
    with TestClient(create_app(settings)) as client:
        add_staff(client)
        application = client.app.state.application
        application.add_user(as_("admin-root"), name="temp-user", role="operations")
        own = customer_world(application, "mgr-li", BRANCH)
        other = customer_world(application, "mgr-zhou", OTHER_BRANCH)
        head = as_("head-sun")
        application.join_team(head, staff_code="mgr-li", display_name="Li Na", role="customer_manager", branch=BRANCH)
        scheme = application.define_appraisal_scheme(head, year="2025", indicators=[
            {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(100)}]).aggregate_id
        target = application.set_target(head, year="2025", unit_type="branch", unit_id=BRANCH,
                                         indicator="new_customers", annual=Decimal(12)).aggregate_id
        yield {"client": client, "own": own, "other": other, "scheme_id": scheme, "target_id": target,
               "position": application.position()}


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    path: str


OPENAPI = create_app(Settings(data_dir=Path("/nonexistent"), database_url=None)).openapi()
"""The app's own document (creating the app connects to nothing)."""
ROUTES = [Route(*operation) for operation in operations(OPENAPI)]


def _example(schema: dict[str, Any], operation: dict[str, Any]) -> Any:
    """The OpenAPI example of the operation's request body (None without a body)."""
    body = operation.get("requestBody")
    if body is None:
        return None
    node = body["content"]["application/json"]["schema"]
    refs = [node] + node.get("anyOf", [])
    ref = next(n["$ref"] for n in refs if "$ref" in n)
    return dict(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["examples"][0])


def request_for(api: dict[str, Any], route: Route, role: str, world: str = "own") -> tuple[str, str, dict, Any]:
    """``(method, url, query, body)`` for calling ``route`` as ``role`` about ``world``'s customer."""
    ids = api[world]
    values = {**ids, "scheme_id": api["scheme_id"], "target_id": api["target_id"], "staff_code": "mgr-li",
              "finding_number": 1, "name": "temp-user", "actor_id": "mgr-li", "aggregate_type": "customer",
              "aggregate_id": ids["customer_id"]}
    url = route.path.format(**{k: str(v) for k, v in values.items()})
    method = route.method
    body = _example(OPENAPI, OPENAPI["paths"][route.path][method.lower()])
    if isinstance(body, dict):
        for field in ("customer_id", "subject_id"):
            if field in body:
                body[field] = str(ids["customer_id"])
        if "proposal_id" in body:
            body["proposal_id"] = str(ids["accepted_proposal_id"])
        if route.operation_id == "reassign_manager":
            body["manager_id"] = "mgr-li"  # refused by the rule (already the manager): the scope stays put
        if route.operation_id == "register_customer":
            body.update(manager_id=ACTOR_OF_ROLE[role], branch=STAFF[ACTOR_OF_ROLE[role]][1] or BRANCH)
    query: dict[str, Any] = {"consistent_with": api["position"]} if method == "GET" else {}
    if route.operation_id in ("evaluation", "staff_performance"):
        query["period"] = "2025-03" if route.operation_id == "evaluation" else "2025"
    if route.operation_id == "evaluation":
        unit = {CM: ("person", "mgr-li"), BH: ("branch", BRANCH)}.get(role, ("bank", "bank"))
        query.update(unit_type=unit[0], unit_id=unit[1])
    if route.operation_id == "visit_calendar":
        query.update({"from": "2025-03-01T00:00:00Z", "to": "2025-04-01T00:00:00Z"})
    return method, url, query, body


def call(api: dict[str, Any], route: Route, role: str, world: str = "own") -> Any:
    method, url, query, body = request_for(api, route, role, world)
    client = api["client"]
    return client.request(method, url, params=query, json=body, headers=bearer(client, ACTOR_OF_ROLE[role]))


# ---------------------------------------------------------------------- the table itself


def test_the_table_in_code_is_the_matrix_of_the_issue() -> None:
    in_code = {op: set(rule.roles) for op, rule in PERMISSIONS.items() if not rule.public and not rule.bench_only}
    assert in_code == EXPECTED
    assert {op for op, rule in PERMISSIONS.items() if rule.public} == PUBLIC


def test_every_route_is_in_the_matrix_and_every_entry_is_a_route() -> None:
    entries = {op for op, rule in PERMISSIONS.items() if not rule.bench_only}
    assert sorted(route.operation_id for route in ROUTES) == sorted(entries)


def test_readme_carries_the_current_permission_matrix() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- permissions:start -->\n", "<!-- permissions:end -->"
    assert readme[readme.index(start) + len(start):readme.index(end)] == matrix_markdown(OPENAPI)


def test_the_administrator_manages_users_only_and_the_auditor_changes_nothing() -> None:
    assert {op for op, roles in EXPECTED.items() if ADMIN in roles} == {"add_user", "rotate_user_token",
                                                                        "revoke_user", "list_users", "get_user"}
    writes = {route.operation_id for route in ROUTES if route.method == "POST"}
    assert not {op for op in writes if AUD in EXPECTED[op]}


# ---------------------------------------------------------------------- every route × every role


CASES = [(route, role) for route in ROUTES if route.operation_id not in PUBLIC for role in ROLES]


@pytest.mark.parametrize(("route", "role"), CASES, ids=[f"{r.operation_id}-{role}" for r, role in CASES])
def test_every_route_admits_exactly_the_roles_of_the_matrix(api: dict[str, Any], route: Route, role: str) -> None:
    response = call(api, route, role)

    if role in EXPECTED[route.operation_id]:
        # authorized: whatever the rules then say about the state, it is not about who asks
        assert response.status_code not in (401, 403, 404), response.text
        assert response.status_code < 500, response.text
        if response.status_code == 422:
            assert "code" in response.json(), response.text  # a rule's refusal, not a malformed example
    else:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.operation_id in PUBLIC], ids=lambda r: r.operation_id)
def test_a_public_route_needs_no_token(api: dict[str, Any], route: Route) -> None:
    assert api["client"].get(route.path).status_code == 200


@pytest.mark.parametrize("route", [r for r in ROUTES if r.operation_id not in PUBLIC], ids=lambda r: r.operation_id)
def test_every_other_route_needs_a_valid_token(api: dict[str, Any], route: Route) -> None:
    method, url, query, body = request_for(api, route, AUD)
    client = api["client"]
    forged = "tuohu_audit-he_" + "0" * 48

    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic YXVkaXQtaGU6eA=="}):
        response = client.request(method, url, params=query, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["code"] == "unauthenticated"


# ---------------------------------------------------------------------- row-level access


SCOPED_SUBJECT_ROUTES = [(route, role) for route in ROUTES for role in (CM, BH)
                         if role in EXPECTED.get(route.operation_id, set())
                         and PERMISSIONS[route.operation_id].subject is not None
                         and PERMISSIONS[route.operation_id].subject.kind not in ("registration", "unit")]


@pytest.mark.parametrize(("route", "role"), SCOPED_SUBJECT_ROUTES,
                         ids=[f"{r.operation_id}-{role}" for r, role in SCOPED_SUBJECT_ROUTES])
def test_another_scopes_customer_is_not_found_like_an_unknown_id(api: dict[str, Any], route: Route,
                                                                  role: str) -> None:
    position = api["client"].app.state.application.position()

    response = call(api, route, role, world="other")

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    assert response.json()["detail"].startswith("no ")
    assert api["client"].app.state.application.position() == position  # nothing written


def test_a_denied_read_says_exactly_what_an_unknown_id_says(api: dict[str, Any]) -> None:
    client = api["client"]
    other, unknown = api["other"]["customer_id"], uuid.uuid4()

    denied = client.get(f"/customers/{other}", headers=bearer(client, "mgr-li"))
    missing = client.get(f"/customers/{unknown}", headers=bearer(client, "mgr-li"))

    assert (denied.status_code, missing.status_code) == (404, 404)
    assert denied.json()["detail"].replace(str(other), "ID") == missing.json()["detail"].replace(str(unknown), "ID")


def test_a_customer_managers_lists_hold_only_their_own_customers(api: dict[str, Any]) -> None:
    client, own, other = api["client"], api["own"], api["other"]
    params = {"consistent_with": api["position"]}

    def rows(path: str, name: str, **query: str) -> list[dict[str, Any]]:
        response = client.get(path, params={**params, **query}, headers=bearer(client, name))
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def ids(path: str, name: str) -> set[str]:
        return {row["id"] for row in rows(path, name)}

    # other tests of this module add rows of their own: compare membership, not whole lists
    assert {row["manager_id"] for row in rows("/customers", "mgr-li")} == {"mgr-li"}
    assert rows("/customers", "mgr-li", manager_id="mgr-zhou") == []  # asking for another's: nothing
    for path, key in (("/customers", "customer_id"), ("/visits", "visit_id"), ("/proposals", "proposal_id"),
                      ("/contracts", "contract_id"), ("/risk-cases", "risk_case_id")):
        seen = ids(path, "mgr-li")
        assert str(own[key]) in seen and str(other[key]) not in seen, path
        seen = ids(path, "head-ma")  # the other branch's head
        assert str(other[key]) in seen and str(own[key]) not in seen, path
        assert {str(own[key]), str(other[key])} <= ids(path, "audit-he"), path
    assert {row["branch"] for row in rows("/customers", "head-ma")} == {OTHER_BRANCH}
    assert {str(own["risk_case_id"]), str(other["risk_case_id"])} <= ids("/risk-cases", "risk-zhou")


def test_a_customer_manager_registers_customers_only_for_themselves(api: dict[str, Any]) -> None:
    client = api["client"]
    body = {"kind": "retail", "acquisition_channel": "online", "source_detail": "web form", "segment": "mass",
            "manager_id": "mgr-zhou", "branch": OTHER_BRANCH}

    response = client.post("/customers", json=body, headers=bearer(client, "mgr-li"))

    assert (response.status_code, response.json()["code"]) == (403, "outside_your_scope")


def test_a_customer_manager_cannot_plan_a_visit_or_draft_a_proposal_for_anothers_customer(api: dict[str, Any]) -> None:
    client, other = api["client"], api["other"]
    visit = {"customer_id": str(other["customer_id"]), "purpose": "poach", "scheduled_at": "2025-03-03T09:30:00Z",
             "staff": ["mgr-li"], "method": "phone"}
    proposal = {"customer_id": str(other["customer_id"]), "products": ["payroll"], "pricing_terms": {},
                "rights_and_obligations": "standard"}

    assert client.post("/visits", json=visit, headers=bearer(client, "mgr-li")).status_code == 404
    assert client.post("/proposals", json=proposal, headers=bearer(client, "mgr-li")).status_code == 404
    assert client.post("/contracts", json={"proposal_id": str(other["accepted_proposal_id"])},
                       headers=bearer(client, "mgr-li")).status_code == 404


def test_a_revoked_users_token_stops_working_at_once(api: dict[str, Any]) -> None:
    client = api["client"]
    application = client.app.state.application
    issued = application.add_user(as_("admin-root"), name="leaver", role="compliance_auditor")
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert client.get("/customers", headers=headers).status_code == 200  # verified, now cached

    revoked = client.post("/users/leaver/revoke", json={"reason": "left the bank"},
                          headers=bearer(client, "admin-root"))

    assert revoked.status_code == 200, revoked.text
    assert client.get("/customers", headers=headers).status_code == 401


def test_a_rotated_token_replaces_the_old_one(api: dict[str, Any]) -> None:
    client = api["client"]
    issued = client.app.state.application.add_user(as_("admin-root"), name="rotator", role="compliance_auditor")
    old = {"Authorization": f"Bearer {issued.token}"}
    assert client.get("/customers", headers=old).status_code == 200

    rotated = client.post("/users/rotator/token", headers=bearer(client, "admin-root"))

    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["Cache-Control"] == "no-store"
    new = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert client.get("/customers", headers=old).status_code == 401
    assert client.get("/customers", headers=new).status_code == 200


def test_users_are_listed_without_their_token_hashes(api: dict[str, Any]) -> None:
    client = api["client"]

    response = client.get("/users", headers=bearer(client, "audit-he"))

    assert response.status_code == 200
    assert {"mgr-li", "head-sun", "admin-root"} <= {user["name"] for user in response.json()["data"]}
    assert "token" not in response.text and "argon2" not in response.text


def test_the_actor_on_every_event_is_the_authenticated_user(api: dict[str, Any]) -> None:
    client = api["client"]
    customer_id = api["own"]["customer_id"]

    response = client.post(f"/customers/{customer_id}/facts", json={"group": "needs", "facts": {"fx": True}},
                           headers={**bearer(client, "mgr-li"), "X-Request-ID": "req-matrix-1"})

    assert response.status_code == 200, response.text
    event = list(client.app.state.application.events.get(customer_id))[-1]
    assert (event.actor_id, event.actor_role, event.correlation_id) == ("mgr-li", CM, "req-matrix-1")


def test_every_request_body_has_an_example_the_api_accepts() -> None:
    from interfaces.api import schemas

    with_body = [route for route in ROUTES if "requestBody" in OPENAPI["paths"][route.path][route.method.lower()]]
    assert with_body
    for route in with_body:
        operation = OPENAPI["paths"][route.path][route.method.lower()]
        node = operation["requestBody"]["content"]["application/json"]["schema"]
        name = next(n["$ref"] for n in [node, *node.get("anyOf", [])] if "$ref" in n).rsplit("/", 1)[1]
        getattr(schemas, name).model_validate(_example(OPENAPI, operation))  # raises if the example is invalid


def test_every_protected_operation_documents_its_roles_401_and_403() -> None:
    for route in ROUTES:
        operation = OPENAPI["paths"][route.path][route.method.lower()]
        if route.operation_id in PUBLIC:
            assert "security" not in operation
            continue
        assert operation["security"] == [{"BearerToken": []}], route
        assert {"401", "403"} <= set(operation["responses"]), route
        assert "**Roles:**" in operation["description"], route

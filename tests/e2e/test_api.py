"""The HTTP interface end to end: FastAPI's TestClient over SQLite files in a temporary data dir.

Expected values come from the rules (measures, screening scorecard, risk
assessment rule, funnel definition), never from the program's own output.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api_users import add_staff, bearer
from application import Settings, TuohuApplication
from interfaces.api import create_app
from projections import ProjectionFailed

# the people the tests act as (api_users.STAFF gives their roles and branches)
MANAGER = "mgr-li"
REVIEWER = "rev-wang"
PRODUCT_MANAGER = "pm-zhao"
LEGAL = "legal-chen"  # a reviewer: reviewers review contract clauses
BRANCH_HEAD = "head-sun"
OPERATIONS = "ops-liu"
RISK_OFFICER = "risk-zhou"
AUDITOR = "audit-he"  # reads everything, changes nothing

UTC_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$")


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    """The API over a fresh data dir, with the users of ``api_users.STAFF`` added;
    ``client.start`` is the log position after their events (users are event-sourced too)."""
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as test_client:
        test_client.start = add_staff(test_client)
        yield test_client


# --------------------------------------------------------------------------
# Helpers: one command each, asserting the status so a failure shows the body
# --------------------------------------------------------------------------


def command(client: TestClient, path: str, actor: str, body: Any = None, *, status: int = 200,
            **headers: str) -> dict[str, Any]:
    response = client.post(path, json=body, headers={**bearer(client, actor), **headers})
    assert response.status_code == status, response.text
    if response.status_code < 300:
        client.last_position = max(getattr(client, "last_position", 0), response.json()["position"])
    return response.json()


def get(client: TestClient, path: str, *, status: int = 200, actor: str = AUDITOR) -> Any:
    """GET as ``actor`` (the compliance auditor, who reads everything, by default), reading
    your own writes: ``consistent_with`` the last command's position."""
    position = getattr(client, "last_position", None)
    if position is not None:
        path = f"{path}{'&' if '?' in path else '?'}consistent_with={position}"
    response = client.get(path, headers=bearer(client, actor))
    assert response.status_code == status, response.text
    return response.json()


def customer_body(manager_id: str = "mgr-li", **changes: Any) -> dict[str, Any]:
    return {
        "kind": "corporate", "acquisition_channel": "branch", "source_detail": "walk-in at the counter",
        "segment": "sme_manufacturing", "manager_id": manager_id, "branch": "shanghai-pudong",
        "display_name": "Pudong Precision Ltd.", **changes,
    }


def register(client: TestClient, manager: str = MANAGER) -> str:
    body = customer_body(manager_id=manager)
    return command(client, "/customers", manager, body, status=201)["aggregate_id"]


def screen(client: TestClient, customer_id: str) -> None:
    """Facts that score 115 on scorecard 1.0 (see test_screening_scores_the_recorded_facts)."""
    command(client, f"/customers/{customer_id}/facts", MANAGER,
            {"group": "basic", "facts": {"age": 41, "job": "management"}})
    command(client, f"/customers/{customer_id}/facts", MANAGER,
            {"group": "financial", "facts": {"balance": "12500.00", "housing_loan": False, "personal_loan": False}})
    command(client, f"/customers/{customer_id}/credit-standing", MANAGER,
            {"source": "credit_bureau", "result": "no_default", "rating": "AA"})
    command(client, f"/customers/{customer_id}/screening", MANAGER)


def qualified_customer(client: TestClient) -> str:
    customer_id = register(client)
    screen(client, customer_id)
    command(client, f"/customers/{customer_id}/review", REVIEWER,
            {"decision": "qualified", "reason": "facts verified against the business licence"})
    return customer_id


def proposal_body(customer_id: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "products": ["corporate_current_account", "payroll_service"],
            "pricing_terms": {"account_fee": "waived", "payroll_fee_per_head": "2.00", "currency": "CNY"},
            "rights_and_obligations": "bank provides payroll service; customer keeps payroll with the bank"}


def accepted_proposal(client: TestClient, customer_id: str) -> str:
    proposal_id = command(client, "/proposals", MANAGER, proposal_body(customer_id), status=201)["aggregate_id"]
    command(client, f"/proposals/{proposal_id}/submit", MANAGER)
    command(client, f"/proposals/{proposal_id}/approve", PRODUCT_MANAGER, {"reason": "pricing within policy"})
    command(client, f"/proposals/{proposal_id}/present", MANAGER)
    command(client, f"/proposals/{proposal_id}/accept", MANAGER, {"reason": "customer agreed at the meeting"})
    return proposal_id


def approved_contract(client: TestClient, customer_id: str) -> str:
    proposal_id = accepted_proposal(client, customer_id)
    contract_id = command(client, "/contracts", MANAGER, {"proposal_id": proposal_id}, status=201)["aggregate_id"]
    command(client, f"/contracts/{contract_id}/clause-review", LEGAL, {"findings": []})
    command(client, f"/contracts/{contract_id}/approve", BRANCH_HEAD)
    return contract_id


def avoid_risk_case(client: TestClient, customer_id: str) -> str:
    case_id = command(client, "/risk-cases", RISK_OFFICER, {
        "subject_type": "customer", "subject_id": customer_id, "category": "reputational",
        "description": "negative press about the customer's environmental record"}, status=201)["aggregate_id"]
    command(client, f"/risk-cases/{case_id}/assessment", RISK_OFFICER, {"indicator_scores": {"press": 90}})
    command(client, f"/risk-cases/{case_id}/response", RISK_OFFICER, {
        "response": "avoid", "measures": ["suspend new business"], "reason": "high reputational risk"})
    return case_id


def plan_visit_body(customer_id: str, **changes: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "purpose": "introduce payroll service",
            "scheduled_at": "2025-03-03T09:30:00+08:00", "staff": ["mgr-li"], "method": "in_person", **changes}


def log_position(client: TestClient) -> int:
    return get(client, "/health")["position"]


# --------------------------------------------------------------------------
# The happy path
# --------------------------------------------------------------------------


def test_a_customer_goes_from_registration_to_an_opened_account(client: TestClient) -> None:
    response = client.post("/customers", json=customer_body(), headers=bearer(client, MANAGER))
    assert response.status_code == 201, response.text
    customer_id = response.json()["aggregate_id"]
    assert response.json() == {"aggregate_id": customer_id, "version": 1, "position": client.start + 1,
                               "replayed": False}
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/customers/{customer_id}"

    screen(client, customer_id)  # facts, facts, credit standing, screening: versions 2-5
    command(client, f"/customers/{customer_id}/review", REVIEWER,
            {"decision": "qualified", "reason": "facts verified against the business licence"})

    visit_id = command(client, "/visits", MANAGER, plan_visit_body(customer_id), status=201)["aggregate_id"]
    command(client, f"/visits/{visit_id}/conduct", MANAGER,
            {"outcome": "interested in payroll", "needs_learned": "payroll for 120 staff", "duration_seconds": 2700})
    command(client, f"/visits/{visit_id}/feedback", MANAGER,
            {"departments": ["product"], "feedback": "wants a payroll fee below 2.50 CNY per head"})

    contract_id = approved_contract(client, customer_id)
    signed = command(client, f"/contracts/{contract_id}/sign", BRANCH_HEAD, {"customer_signatory": "Ms. Gao, CFO"})
    assert signed["version"] == 4  # drafted, clauses reviewed, approved, signed

    command(client, f"/customers/{customer_id}/account-application", MANAGER,
            {"account_type": "corporate_current", "documents": ["business licence", "legal representative ID"]})
    command(client, f"/customers/{customer_id}/document-review", OPERATIONS, {"accepted": True})
    command(client, f"/customers/{customer_id}/account", OPERATIONS, {"account_number": "6222-0001-0042"})
    last = command(client, f"/customers/{customer_id}/products", OPERATIONS,
                   {"products": ["corporate_current_account", "payroll_service"]})

    response = client.get(f"/customers/{customer_id}", headers=bearer(client, AUDITOR))
    assert response.status_code == 200
    customer = response.json()
    # register, 2x facts, credit standing, screening, review, applied, documents, account, products
    assert customer["version"] == last["version"] == 10
    assert response.headers["ETag"] == '"10"'
    assert customer["stage"] == "account_opened"
    assert customer["account_number"] == "6222-0001-0042"
    assert customer["products"] == ["corporate_current_account", "payroll_service"]
    assert customer["manual_review"] == {"decision": "qualified", "reviewer_id": "rev-wang",
                                         "reason": "facts verified against the business licence"}
    assert get(client, f"/contracts/{contract_id}")["signatories"] == {"bank": "head-sun", "customer": "Ms. Gao, CFO"}

    assert get(client, "/reports/funnel") == {
        "registered": 1, "screened": 1, "qualified": 1, "visited": 1, "proposed": 1, "contracted": 1,
        "account_opened": 1,
    }


def test_screening_scores_the_recorded_facts_with_the_documented_scorecard(client: TestClient) -> None:
    customer_id = register(client)
    screen(client, customer_id)
    # scorecard 1.0: base 50, no_default +30, age 41 (26-60) +10, balance 12,500 (>= 10,000) +20,
    # no housing loan 0, no personal loan 0, an occupation +5; >= 70 passes
    expected = 50 + 30 + 10 + 20 + 0 + 0 + 5
    screening = get(client, f"/customers/{customer_id}")["screening"]
    assert screening == {"model_name": "retail-scorecard", "model_version": "1.0", "score": expected,
                         "outcome": "pass"}


def test_the_funnel_counts_each_customer_at_every_stage_it_reached(client: TestClient) -> None:
    won = qualified_customer(client)
    command(client, "/visits", MANAGER, plan_visit_body(won), status=201)
    command(client, "/proposals", MANAGER, proposal_body(won), status=201)
    rejected = register(client)
    screen(client, rejected)
    command(client, f"/customers/{rejected}/review", REVIEWER, {"decision": "rejected", "reason": "licence expired"})
    register(client)  # registered only

    # a planned visit is not a visit made; a drafted proposal is proposed
    assert get(client, "/reports/funnel") == {
        "registered": 3, "screened": 2, "qualified": 1, "visited": 0, "proposed": 1, "contracted": 0,
        "account_opened": 0,
    }


# --------------------------------------------------------------------------
# Rules refuse commands: 409 with the rule's code
# --------------------------------------------------------------------------


def test_a_reviewer_never_becomes_the_manager_of_a_customer_and_so_reviews_it_as_a_checker(client: TestClient) -> None:
    customer_id = register(client)
    screen(client, customer_id)

    refused = command(client, f"/customers/{customer_id}/manager", BRANCH_HEAD,
                      {"manager_id": REVIEWER, "reason": "rev-wang takes over the relationship"}, status=409)
    command(client, f"/customers/{customer_id}/review", REVIEWER, {"decision": "qualified", "reason": "verified"})

    assert refused["code"] == "manager_not_eligible"  # the reviewer-is-manager rule itself: tests/unit/test_customer.py
    customer = get(client, f"/customers/{customer_id}")
    assert (customer["manager_id"], customer["stage"]) == (MANAGER, "qualified")


def test_a_customer_manager_may_not_review_customers(client: TestClient) -> None:
    customer_id = register(client)
    screen(client, customer_id)

    refused = command(client, f"/customers/{customer_id}/review", MANAGER,
                      {"decision": "qualified", "reason": "looks fine"}, status=403)

    assert refused["code"] == "forbidden"
    assert get(client, f"/customers/{customer_id}")["stage"] == "screened"


def test_a_proposal_cannot_be_approved_by_its_drafter(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    # product managers may draft proposals (product solutions) and approve them, but not their own
    proposal_id = command(client, "/proposals", PRODUCT_MANAGER, proposal_body(customer_id),
                          status=201)["aggregate_id"]
    command(client, f"/proposals/{proposal_id}/submit", PRODUCT_MANAGER)

    refused = command(client, f"/proposals/{proposal_id}/approve", PRODUCT_MANAGER, status=409)

    assert refused["code"] == "proposal_approver_is_drafter"
    assert get(client, f"/proposals/{proposal_id}")["status"] == "submitted"


def test_a_command_in_the_wrong_state_is_an_illegal_transition(client: TestClient) -> None:
    customer_id = register(client)

    refused = command(client, f"/customers/{customer_id}/account", OPERATIONS, {"account_number": "1"}, status=409)

    assert refused["code"] == "illegal_transition"


def test_signing_is_refused_while_the_customer_has_an_open_avoid_risk_case(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    contract_id = approved_contract(client, customer_id)
    case_id = avoid_risk_case(client, customer_id)
    case = get(client, f"/risk-cases/{case_id}")
    assert (case["level"], case["blocks_business"]) == ("high", True)  # one indicator >= 80 is high

    refused = command(client, f"/contracts/{contract_id}/sign", BRANCH_HEAD, {"customer_signatory": "Ms. Gao"},
                      status=409)

    assert refused["code"] == "contract_signing_blocked_by_risk"
    assert case_id in refused["detail"]
    assert get(client, f"/contracts/{contract_id}")["status"] == "approved"


def test_signing_is_allowed_once_the_avoid_risk_case_is_closed(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    contract_id = approved_contract(client, customer_id)
    case_id = avoid_risk_case(client, customer_id)
    command(client, f"/risk-cases/{case_id}/disposal", RISK_OFFICER,
            {"actions": ["site inspection"], "findings": "press report was about a former subsidiary"})
    command(client, f"/risk-cases/{case_id}/close", RISK_OFFICER, {"reason": "risk no longer applies"})
    assert get(client, f"/customers/{customer_id}")["open_risk_cases"] == []

    command(client, f"/contracts/{contract_id}/sign", BRANCH_HEAD, {"customer_signatory": "Ms. Gao"})

    assert get(client, f"/contracts/{contract_id}")["status"] == "signed"


def test_accepting_a_medium_risk_is_refused(client: TestClient) -> None:
    customer_id = register(client)
    case_id = command(client, "/risk-cases", RISK_OFFICER, {
        "subject_type": "customer", "subject_id": customer_id, "category": "credit",
        "description": "overdue supplier payments"}, status=201)["aggregate_id"]
    # no indicator >= 80 and mean 45 < 60, but one indicator >= 50: medium
    command(client, f"/risk-cases/{case_id}/assessment", RISK_OFFICER,
            {"indicator_scores": {"overdue_days": 55, "leverage": 35}})
    assert get(client, f"/risk-cases/{case_id}")["level"] == "medium"

    refused = command(client, f"/risk-cases/{case_id}/response", RISK_OFFICER,
                      {"response": "accept", "measures": ["monitor monthly"], "reason": "small exposure"}, status=409)

    assert refused["code"] == "risk_response_not_allowed"


def test_a_key_customers_visit_must_be_prepared_before_it_is_conducted(client: TestClient) -> None:
    customer_id = register(client)
    command(client, f"/customers/{customer_id}/key-customer", BRANCH_HEAD, {"reason": "largest employer in the park"})
    visit_id = command(client, "/visits", MANAGER, plan_visit_body(customer_id), status=201)["aggregate_id"]
    outcome = {"outcome": "agreed to a proposal"}

    refused = command(client, f"/visits/{visit_id}/conduct", MANAGER, outcome, status=409)
    command(client, f"/visits/{visit_id}/preparation", MANAGER, {
        "background": "family-owned, 3 plants", "materials": ["payroll brochure"],
        "talking_points": ["fee waiver for 12 months"]})
    command(client, f"/visits/{visit_id}/conduct", MANAGER, outcome)

    assert refused["code"] == "visit_preparation_required"
    visit = get(client, f"/visits/{visit_id}")
    assert (visit["status"], visit["outcome"]) == ("conducted", "agreed to a proposal")
    assert visit["preparation"]["talking_points"] == ["fee waiver for 12 months"]


def test_a_visit_is_rescheduled_then_cancelled_with_reasons(client: TestClient) -> None:
    customer_id = register(client)
    visit_id = command(client, "/visits", MANAGER, plan_visit_body(customer_id), status=201)["aggregate_id"]

    command(client, f"/visits/{visit_id}/reschedule", MANAGER,
            {"scheduled_at": "2025-03-05T14:00:00-05:00", "reason": "CFO travelling"})
    command(client, f"/visits/{visit_id}/cancel", MANAGER, {"reason": "customer chose another bank"})

    visit = get(client, f"/visits/{visit_id}")
    assert (visit["scheduled_at"], visit["status"], visit["version"]) == ("2025-03-05T19:00:00+00:00", "cancelled", 3)
    assert get(client, "/visits?status=cancelled")["data"][0]["id"] == visit_id


def test_a_returned_proposal_is_revised_and_every_revision_is_kept(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    proposal_id = command(client, "/proposals", MANAGER, proposal_body(customer_id), status=201)["aggregate_id"]
    command(client, f"/proposals/{proposal_id}/submit", MANAGER)
    command(client, f"/proposals/{proposal_id}/return", PRODUCT_MANAGER, {"reason": "payroll fee below cost"})
    revised = {**proposal_body(customer_id), "reason": "fee raised to cost"}
    del revised["customer_id"]
    revised["pricing_terms"] = {**revised["pricing_terms"], "payroll_fee_per_head": "2.40"}

    command(client, f"/proposals/{proposal_id}/revisions", MANAGER, revised)

    proposal = get(client, f"/proposals/{proposal_id}")
    assert (proposal["status"], proposal["revision"]) == ("draft", 2)
    assert [r["pricing_terms"]["payroll_fee_per_head"] for r in proposal["revisions"]] == ["2.00", "2.40"]


def test_the_customer_may_decline_and_the_bank_may_withdraw_a_proposal(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    declined = command(client, "/proposals", MANAGER, proposal_body(customer_id), status=201)["aggregate_id"]
    for step, actor in (("submit", MANAGER), ("approve", PRODUCT_MANAGER), ("present", MANAGER)):
        command(client, f"/proposals/{declined}/{step}", actor)
    withdrawn = command(client, "/proposals", MANAGER, proposal_body(customer_id), status=201)["aggregate_id"]

    command(client, f"/proposals/{declined}/decline", MANAGER, {"reason": "found a cheaper offer"})
    command(client, f"/proposals/{withdrawn}/withdraw", MANAGER, {"reason": "duplicate of the declined one"})

    assert get(client, f"/proposals/{declined}")["status"] == "declined"
    assert get(client, f"/proposals/{withdrawn}")["status"] == "withdrawn"


def test_clause_findings_must_be_resolved_before_the_contract_is_approved(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    proposal_id = accepted_proposal(client, customer_id)
    contract_id = command(client, "/contracts", MANAGER, {"proposal_id": proposal_id}, status=201)["aggregate_id"]
    command(client, f"/contracts/{contract_id}/clause-review", LEGAL, {"findings": [
        {"clause": "7.2", "finding": "liability cap missing"},
        {"clause": "9.1", "finding": "governing law not stated"}]})
    command(client, f"/contracts/{contract_id}/findings/2/resolve", LEGAL, {"resolution": "PRC law added"})

    refused = command(client, f"/contracts/{contract_id}/approve", BRANCH_HEAD, status=409)
    command(client, f"/contracts/{contract_id}/findings/1/resolve", LEGAL, {"resolution": "cap at fees of 12 months"})
    command(client, f"/contracts/{contract_id}/approve", BRANCH_HEAD, {"reason": "clauses clean"})

    assert refused["code"] == "open_clause_findings"
    assert get(client, f"/contracts/{contract_id}")["status"] == "approved"


def test_a_signed_contract_is_terminated_with_the_reason(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    contract_id = approved_contract(client, customer_id)
    command(client, f"/contracts/{contract_id}/sign", BRANCH_HEAD, {"customer_signatory": "Ms. Gao"})

    command(client, f"/contracts/{contract_id}/terminate", BRANCH_HEAD, {"reason": "customer relocated abroad"})

    assert get(client, f"/contracts/{contract_id}")["status"] == "terminated"


def test_a_reading_that_crosses_its_threshold_raises_one_warning(client: TestClient) -> None:
    customer_id = register(client)
    case_id = command(client, "/risk-cases", RISK_OFFICER, {
        "subject_type": "customer", "subject_id": customer_id, "category": "credit",
        "description": "overdue supplier payments"}, status=201)["aggregate_id"]
    command(client, f"/risk-cases/{case_id}/assessment", RISK_OFFICER, {"indicator_scores": {"overdue_days": 20}})
    command(client, f"/risk-cases/{case_id}/response", RISK_OFFICER,
            {"response": "reduce", "measures": ["monthly review"], "reason": "low but rising"})
    reading = {"indicator": "overdue_days", "threshold": "30", "direction": "above"}

    command(client, f"/risk-cases/{case_id}/readings", RISK_OFFICER, {**reading, "value": "12"})
    command(client, f"/risk-cases/{case_id}/readings", RISK_OFFICER, {**reading, "value": "45.5"})  # crosses
    command(client, f"/risk-cases/{case_id}/readings", RISK_OFFICER, {**reading, "value": "50"})  # still beyond

    case = get(client, f"/risk-cases/{case_id}")
    assert (case["level"], case["warnings"], case["last_readings"]) == ("low", 1, {"overdue_days": True})


def identified_risk_case(client: TestClient, customer_id: str) -> str:
    return command(client, "/risk-cases", RISK_OFFICER, {
        "subject_type": "customer", "subject_id": customer_id, "category": "credit",
        "description": "overdue supplier payments"}, status=201)["aggregate_id"]


@pytest.mark.parametrize("score", [True, "80"], ids=["boolean", "string"])
def test_an_indicator_score_that_is_not_a_json_number_is_a_422_and_writes_nothing(client: TestClient,
                                                                                 score: Any) -> None:
    case_id = identified_risk_case(client, register(client))
    position = log_position(client)

    detail = command(client, f"/risk-cases/{case_id}/assessment", RISK_OFFICER, {"indicator_scores": {"pd": score}},
                     status=422)["detail"]

    assert [(error["loc"], error["type"]) for error in detail] == [(["body", "indicator_scores", "pd"], "int_type")]
    assert log_position(client) == position


def test_an_indicator_score_written_with_a_zero_fraction_is_that_whole_number(client: TestClient) -> None:
    case_id = identified_risk_case(client, register(client))

    command(client, f"/risk-cases/{case_id}/assessment", RISK_OFFICER, {"indicator_scores": {"pd": 80.0}})

    assert get(client, f"/risk-cases/{case_id}")["level"] == "high"  # any score >= 80 is high (measures §4)


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("follow-ups", {"satisfaction": True}, ["body", "satisfaction"]),
    ("follow-ups", {"satisfaction": "5"}, ["body", "satisfaction"]),
    ("document-review", {"accepted": "yes"}, ["body", "accepted"]),
    ("document-review", {"accepted": 1}, ["body", "accepted"]),
], ids=["satisfaction-boolean", "satisfaction-string", "accepted-string", "accepted-number"])
def test_a_number_or_a_yes_no_of_another_json_type_is_a_422(client: TestClient, path: str, body: dict[str, Any],
                                                            loc: list[str]) -> None:
    customer_id = register(client)

    detail = command(client, f"/customers/{customer_id}/{path}", MANAGER if path == "follow-ups" else OPERATIONS,
                     body, status=422)["detail"]

    assert [error["loc"] for error in detail] == [loc]


def test_a_visits_duration_given_as_a_string_is_a_422(client: TestClient) -> None:
    customer_id = register(client)
    visit_id = command(client, "/visits", MANAGER, plan_visit_body(customer_id), status=201)["aggregate_id"]

    detail = command(client, f"/visits/{visit_id}/conduct", MANAGER,
                     {"outcome": "interested", "duration_seconds": "2700"}, status=422)["detail"]

    assert [(error["loc"], error["type"]) for error in detail] == [(["body", "duration_seconds"], "int_type")]


def test_returned_documents_need_a_reason_and_can_be_resubmitted(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    application = {"account_type": "corporate_current", "documents": ["business licence"]}
    command(client, f"/customers/{customer_id}/account-application", MANAGER, application)

    refused = command(client, f"/customers/{customer_id}/document-review", OPERATIONS, {"accepted": False},
                      status=422)
    command(client, f"/customers/{customer_id}/document-review", OPERATIONS,
            {"accepted": False, "return_reasons": ["licence copy is not certified"]})
    assert get(client, f"/customers/{customer_id}")["stage"] == "documents_returned"
    command(client, f"/customers/{customer_id}/account-application", MANAGER, application)

    assert refused["field"] == "return_reasons"
    assert get(client, f"/customers/{customer_id}")["stage"] == "account_opening_applied"


def test_an_account_holder_is_followed_up_and_handed_to_another_manager(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    command(client, f"/customers/{customer_id}/account-application", MANAGER,
            {"account_type": "corporate_current", "documents": ["business licence"]})
    command(client, f"/customers/{customer_id}/document-review", OPERATIONS, {"accepted": True})
    command(client, f"/customers/{customer_id}/account", OPERATIONS, {"account_number": "6222-0001-0044"})

    command(client, f"/customers/{customer_id}/follow-ups", MANAGER, {"satisfaction": 5, "feedback": "smooth"})
    out_of_range = command(client, f"/customers/{customer_id}/follow-ups", MANAGER, {"satisfaction": 6}, status=422)
    command(client, f"/customers/{customer_id}/manager", BRANCH_HEAD,
            {"manager_id": "mgr-qian", "reason": "mgr-li moved to the head office"})

    assert out_of_range["field"] == "satisfaction"
    customer = get(client, f"/customers/{customer_id}")
    assert (customer["follow_ups"], customer["manager_id"]) == (1, "mgr-qian")
    assert [row["id"] for row in get(client, "/customers?manager_id=mgr-qian")["data"]] == [customer_id]


@pytest.mark.parametrize(("manager_id", "why"), [
    ("ghost-user", "no user is named 'ghost-user'"),
    ("mgr-zhou", "works for branch 'beijing-chaoyang'"),  # a customer manager of another branch
    ("rev-wang", "is a reviewer, not a customer manager"),
], ids=["no-such-user", "another-branch", "another-role"])
def test_a_customer_is_handed_only_to_an_active_customer_manager_of_its_branch(client: TestClient, manager_id: str,
                                                                               why: str) -> None:
    customer_id = register(client)
    position = log_position(client)

    refused = command(client, f"/customers/{customer_id}/manager", BRANCH_HEAD,
                      {"manager_id": manager_id, "reason": "moved"}, status=409)

    assert refused["code"] == "manager_not_eligible"
    assert why in refused["detail"]
    assert log_position(client) == position
    assert get(client, f"/customers/{customer_id}")["manager_id"] == MANAGER


def test_a_customer_is_not_handed_to_a_revoked_customer_manager(client: TestClient) -> None:
    customer_id = register(client)
    command(client, "/users/mgr-qian/revoke", "admin-root", {"reason": "left the bank"})

    refused = command(client, f"/customers/{customer_id}/manager", BRANCH_HEAD,
                      {"manager_id": "mgr-qian", "reason": "moved"}, status=409)

    assert refused["code"] == "manager_not_eligible"


def test_a_team_member_is_trained_rewarded_and_then_leaves(client: TestClient) -> None:
    response = client.post("/staff", json={"staff_code": "mgr-li", "display_name": "Li Na", "role": "customer_manager",
                                           "branch": "shanghai-pudong"}, headers=bearer(client, BRANCH_HEAD))
    assert (response.status_code, response.headers["Location"]) == (201, "/staff/mgr-li")
    command(client, "/staff/mgr-li/trainings", BRANCH_HEAD, {"kind": "internal", "topic": "KYC", "hours": "7.5"})
    command(client, "/staff/mgr-li/trainings", BRANCH_HEAD, {"kind": "external", "topic": "trade finance", "hours": 4})
    command(client, "/staff/mgr-li/awards", BRANCH_HEAD,
            {"kind": "bonus", "reason": "30 new SME customers", "amount": "5000", "currency": "CNY"})
    command(client, "/staff/mgr-li/leave", BRANCH_HEAD, {"reason": "moved to the head office"})

    refused = command(client, "/staff/mgr-li/trainings", BRANCH_HEAD,
                      {"kind": "internal", "topic": "AML", "hours": 2}, status=409)

    assert refused["code"] == "illegal_transition"
    staff = get(client, "/staff/mgr-li")
    assert (staff["training_hours"], staff["awards"], staff["active"]) == ("11.5", 1, False)  # 7.5 + 4 hours


def test_an_appraisal_schemes_weights_must_sum_to_100(client: TestClient) -> None:
    indicators = [{"indicator": "new_customers", "group": "acquisition_results", "weight": 60},
                  {"indicator": "average_satisfaction", "group": "service_quality", "weight": 30}]

    refused = command(client, "/appraisal-schemes", BRANCH_HEAD, {"year": "2025", "indicators": indicators},
                      status=409)
    indicators[1]["weight"] = 40
    scheme_id = command(client, "/appraisal-schemes", BRANCH_HEAD, {"year": "2025", "indicators": indicators},
                        status=201)["aggregate_id"]
    indicators[0]["weight"], indicators[1]["weight"] = "50.5", "49.5"
    command(client, f"/appraisal-schemes/{scheme_id}/redefinition", BRANCH_HEAD,
            {"indicators": indicators, "reason": "more weight on service"})

    assert refused["code"] == "weights_do_not_sum_to_100"
    assert [i["weight"] for i in get(client, f"/appraisal-schemes/{scheme_id}")["indicators"]] == ["50.5", "49.5"]


def test_a_target_is_set_once_per_unit_indicator_and_year_then_revised(client: TestClient) -> None:
    target = {"year": "2025", "unit_type": "branch", "unit_id": "shanghai-pudong", "indicator": "new_customers",
              "annual": "120", "checkpoints": {"2025-H1": "50"}}
    target_id = command(client, "/targets", BRANCH_HEAD, target, status=201)["aggregate_id"]

    duplicate = command(client, "/targets", BRANCH_HEAD, target, status=409)
    wrong_year = command(client, f"/targets/{target_id}/revisions", BRANCH_HEAD,
                         {"annual": "150", "checkpoints": {"2024-Q1": "10"}, "reason": "new plant opened"}, status=422)
    command(client, f"/targets/{target_id}/revisions", BRANCH_HEAD,
            {"annual": "150", "checkpoints": {"2025-Q1": "30"}, "reason": "new plant opened"})

    assert duplicate["code"] == "already_exists"
    assert wrong_year["field"] == "checkpoints.2024-Q1"
    current = get(client, f"/targets/{target_id}")
    assert (current["annual"], current["checkpoints"], current["version"]) == ("150", {"2025-Q1": "30"}, 2)


# --------------------------------------------------------------------------
# Unknown ids: 404; invalid requests: 422 naming the field
# --------------------------------------------------------------------------


def test_an_unknown_customer_is_not_found(client: TestClient) -> None:
    unknown = str(uuid.uuid4())

    assert get(client, f"/customers/{unknown}", status=404)["code"] == "not_found"
    refused = command(client, f"/customers/{unknown}/facts", MANAGER, {"group": "needs", "facts": {"fx": True}},
                      status=404)
    assert refused["code"] == "not_found"


def test_the_id_of_another_kind_of_aggregate_is_not_found(client: TestClient) -> None:
    customer_id = register(client)

    assert get(client, f"/visits/{customer_id}", status=404)["code"] == "not_found"


def test_a_visit_to_an_unknown_customer_is_not_found(client: TestClient) -> None:
    refused = command(client, "/visits", MANAGER, plan_visit_body(str(uuid.uuid4())), status=404)

    assert refused["code"] == "not_found"
    assert log_position(client) == client.start


def test_an_invalid_uuid_in_the_path_is_a_422(client: TestClient) -> None:
    detail = get(client, "/customers/not-a-uuid", status=422)["detail"]

    assert detail[0]["loc"] == ["path", "customer_id"]


def test_a_missing_field_is_a_422_naming_it(client: TestClient) -> None:
    body = customer_body()
    del body["kind"]

    detail = command(client, "/customers", MANAGER, body, status=422)["detail"]

    assert [error["loc"] for error in detail] == [["body", "kind"]]
    assert log_position(client) == client.start


def test_a_value_outside_its_choices_is_a_422_naming_the_field(client: TestClient) -> None:
    detail = command(client, "/customers", MANAGER, customer_body(acquisition_channel="carrier_pigeon"),
                     status=422)["detail"]

    assert [error["loc"] for error in detail] == [["body", "acquisition_channel"]]


def test_a_value_the_domain_refuses_is_a_422_naming_the_field(client: TestClient) -> None:
    refused = command(client, "/customers", MANAGER, customer_body(source_detail="   "), status=422)

    assert refused == {"code": "invalid_value", "detail": "source_detail: must not be empty", "field": "source_detail"}
    assert log_position(client) == client.start


def test_a_decision_without_a_reason_is_a_422(client: TestClient) -> None:
    customer_id = register(client)
    screen(client, customer_id)

    detail = command(client, f"/customers/{customer_id}/review", REVIEWER, {"decision": "qualified", "reason": " "},
                     status=422)["detail"]

    assert [error["loc"] for error in detail] == [["body", "reason"]]


def test_a_time_without_a_utc_offset_is_a_422(client: TestClient) -> None:
    customer_id = register(client)

    detail = command(client, "/visits", MANAGER, plan_visit_body(customer_id, scheduled_at="2025-03-03T09:30:00"),
                     status=422)["detail"]

    assert [(error["loc"], error["type"]) for error in detail] == [(["body", "scheduled_at"], "timezone_aware")]


def test_a_time_that_cannot_be_expressed_in_utc_is_a_422(client: TestClient) -> None:
    customer_id = register(client)

    detail = command(client, "/visits", MANAGER,
                     plan_visit_body(customer_id, scheduled_at="9999-12-31T23:00:00-14:00"), status=422)["detail"]

    assert [error["loc"] for error in detail] == [["body", "scheduled_at"]]


def test_a_value_longer_than_its_read_model_column_is_a_422(client: TestClient) -> None:
    detail = command(client, "/customers", MANAGER, customer_body(branch="b" * 65), status=422)["detail"]

    assert [(error["loc"], error["type"]) for error in detail] == [(["body", "branch"], "string_too_long")]


def test_a_number_that_is_not_finite_is_a_422(client: TestClient) -> None:
    customer_id = register(client)
    response = client.post(f"/customers/{customer_id}/facts", content='{"group": "financial", "facts": {"balance": NaN}}',
                           headers={**bearer(client, MANAGER), "Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "facts"]


def raw_post(client: TestClient, path: str, actor: str, content: str, **headers: str) -> Any:
    """POST ``content`` as it is written (JSON escapes a client library would not produce)."""
    return client.post(path, content=content, headers={**bearer(client, actor), "Content-Type": "application/json",
                                                       **headers})


def test_a_lone_surrogate_in_a_field_is_a_422_naming_the_field_and_writes_nothing(client: TestClient) -> None:
    body = json.dumps(customer_body(source_detail="x\ud800y"), ensure_ascii=True)  # the escape as a client sends it

    response = raw_post(client, "/customers", MANAGER, body)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "source_detail"], "invalid_text")
    assert error["input"] == "x\\ud800y"  # echoed with the surrogate escaped, as UTF-8 can carry it
    assert log_position(client) == client.start


@pytest.mark.parametrize("facts", ['{"name": "x\\ud800y"}', '{"x\\udfff": 1}', '{"names": ["ok", "\\udbff"]}'],
                         ids=["value", "key", "nested"])
def test_a_lone_surrogate_anywhere_in_the_facts_is_a_422_and_writes_nothing(client: TestClient, facts: str) -> None:
    customer_id = register(client)
    position = log_position(client)

    response = raw_post(client, f"/customers/{customer_id}/facts", MANAGER, f'{{"group": "basic", "facts": {facts}}}',
                        **{"Idempotency-Key": "facts-with-a-surrogate"})

    assert response.status_code == 422
    assert [(error["loc"], error["type"]) for error in response.json()["detail"]] == [
        (["body", "facts"], "invalid_text")]
    assert log_position(client) == position


def test_a_surrogate_pair_is_one_character_and_is_recorded(client: TestClient) -> None:
    customer_id = register(client)

    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"note": "\U0001F600"}})

    assert get(client, f"/customers/{customer_id}")["facts"]["needs"] == {"note": "\U0001F600"}


def test_an_encoded_surrogate_in_a_query_is_not_an_error_of_the_server(client: TestClient) -> None:
    response = client.get("/customers?q=%ED%A0%80", headers=bearer(client, AUDITOR))

    assert response.status_code == 200


def test_a_command_without_a_bearer_token_is_a_401_and_writes_nothing(client: TestClient) -> None:
    response = client.post("/customers", json=customer_body())

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert log_position(client) == client.start


def test_the_actor_headers_of_old_clients_no_longer_name_the_actor(client: TestClient) -> None:
    response = client.post("/customers", json=customer_body(manager_id=MANAGER),
                           headers={**bearer(client, "mgr-qian"), "X-Actor-Id": MANAGER,
                                    "X-Actor-Role": "customer_manager"})

    assert response.status_code == 403  # mgr-qian may register customers only for themselves
    assert response.json()["code"] == "outside_your_scope"
    assert log_position(client) == client.start


def test_an_unknown_field_is_a_422(client: TestClient) -> None:
    detail = command(client, "/customers", MANAGER, customer_body(manger_id="typo"), status=422)["detail"]

    assert [error["loc"] for error in detail] == [["body", "manger_id"]]


def test_an_unknown_route_is_a_404_with_a_code(client: TestClient) -> None:
    response = client.get("/no-such-route", headers=bearer(client, AUDITOR))

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_method_a_route_does_not_take_is_a_405_with_a_code_and_the_allowed_methods(client: TestClient) -> None:
    response = client.delete("/customers", headers=bearer(client, MANAGER))

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


# --------------------------------------------------------------------------
# Versions (If-Match / ETag) and idempotency
# --------------------------------------------------------------------------


def test_a_command_with_a_stale_if_match_is_refused_with_412_and_writes_nothing(client: TestClient) -> None:
    customer_id = register(client)
    first = client.post(f"/customers/{customer_id}/facts", json={"group": "needs", "facts": {"payroll": True}},
                        headers={**bearer(client, MANAGER), "If-Match": '"1"'})
    assert (first.status_code, first.headers["ETag"]) == (200, '"2"')
    position = log_position(client)

    stale = client.post(f"/customers/{customer_id}/facts", json={"group": "needs", "facts": {"fx": True}},
                        headers={**bearer(client, MANAGER), "If-Match": '"1"'})

    assert stale.status_code == 412
    assert stale.json()["code"] == "version_mismatch"
    assert stale.headers["ETag"] == '"2"'
    assert log_position(client) == position
    customer = get(client, f"/customers/{customer_id}")
    assert (customer["version"], customer["facts"]["needs"]) == (2, {"payroll": True})


def test_a_malformed_if_match_is_a_422(client: TestClient) -> None:
    customer_id = register(client)

    detail = command(client, f"/customers/{customer_id}/screening", MANAGER, status=422,
                     **{"If-Match": "version one"})["detail"]

    assert detail[0]["loc"] == ["header", "if-match"]


def test_repeating_an_idempotency_key_returns_the_first_result_and_writes_nothing(client: TestClient) -> None:
    key = {"Idempotency-Key": "onboarding-form-8812"}
    first = command(client, "/customers", MANAGER, customer_body(), status=201, **key)
    position = log_position(client)

    again = command(client, "/customers", MANAGER, customer_body(), status=201, **key)

    assert again["aggregate_id"] == first["aggregate_id"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert log_position(client) == position
    assert [row["id"] for row in get(client, "/customers")["data"]] == [first["aggregate_id"]]


def test_repeating_a_command_with_its_idempotency_key_has_no_second_effect(client: TestClient) -> None:
    customer_id = register(client)
    key = {"Idempotency-Key": "follow-up-call-17"}
    body = {"group": "needs", "facts": {"payroll": True}}
    first = command(client, f"/customers/{customer_id}/facts", MANAGER, body, **key)
    position = log_position(client)

    again = command(client, f"/customers/{customer_id}/facts", MANAGER, body, **key)

    assert (again["version"], again["replayed"]) == (first["version"], True)
    assert log_position(client) == position


def test_a_replay_answers_the_first_version_position_and_etag_after_later_writes(client: TestClient) -> None:
    customer_id = register(client)  # version 1
    key = {**bearer(client, MANAGER), "Idempotency-Key": "kk1"}
    body = {"group": "needs", "facts": {"payroll": True}}
    first = client.post(f"/customers/{customer_id}/facts", json=body, headers=key)
    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"fx": True}})

    again = client.post(f"/customers/{customer_id}/facts", json=body, headers=key)

    assert (first.status_code, first.json()["version"], first.headers["ETag"]) == (200, 2, '"2"')
    assert (again.status_code, again.headers["ETag"]) == (200, '"2"')
    assert again.json() == {**first.json(), "replayed": True}


def test_a_replayed_registration_answers_its_first_status_body_location_and_etag(client: TestClient) -> None:
    key = {**bearer(client, MANAGER), "Idempotency-Key": "onboarding-form-8814"}
    first = client.post("/customers", json=customer_body(), headers=key)
    customer_id = first.json()["aggregate_id"]
    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"payroll": True}})

    again = client.post("/customers", json=customer_body(), headers=key)

    assert (first.status_code, first.json()["version"], first.headers["ETag"]) == (201, 1, '"1"')
    assert (again.status_code, again.headers["ETag"], again.headers["Location"]) == (
        201, '"1"', first.headers["Location"])
    assert again.json() == {**first.json(), "replayed": True}


def test_an_idempotency_key_reused_with_another_body_is_a_422_and_writes_nothing(client: TestClient) -> None:
    customer_id = register(client)
    key = {"Idempotency-Key": "follow-up-call-18"}
    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"payroll": True}}, **key)
    position = log_position(client)

    refused = command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"fx": True}},
                      status=422, **key)

    assert (refused["code"], refused["field"]) == ("idempotency_key_reused", "idempotency_key")
    assert log_position(client) == position


def test_the_same_body_written_differently_is_the_same_request(client: TestClient) -> None:
    customer_id = register(client)
    key = {"Idempotency-Key": "form-8813", "Content-Type": "application/json"}
    first = client.post(f"/customers/{customer_id}/facts", content='{"group": "needs", "facts": {"a": 1, "b": 2}}',
                        headers={**bearer(client, MANAGER), **key})
    again = client.post(f"/customers/{customer_id}/facts", content='{"facts":{"b":2,"a":1},"group":"needs"}',
                        headers={**bearer(client, MANAGER), **key})

    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["replayed"], again.json()["replayed"]) == (False, True)


@pytest.mark.parametrize("written", ["1.0", "1e0", "10E-1"])
def test_a_number_written_another_way_is_the_same_request(client: TestClient, written: str) -> None:
    customer_id = register(client)
    key = {"Idempotency-Key": "form-8815", "Content-Type": "application/json"}
    first = client.post(f"/customers/{customer_id}/facts", content='{"group": "needs", "facts": {"n": 1}}',
                        headers={**bearer(client, MANAGER), **key})
    position = log_position(client)
    again = client.post(f"/customers/{customer_id}/facts", content=f'{{"group": "needs", "facts": {{"n": {written}}}}}',
                        headers={**bearer(client, MANAGER), **key})

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {**first.json(), "replayed": True}
    assert log_position(client) == position


def test_another_number_is_another_request(client: TestClient) -> None:
    customer_id = register(client)
    key = {"Idempotency-Key": "form-8816"}
    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"n": 1}}, **key)

    refused = command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"n": 1.5}},
                      status=422, **key)

    assert refused["code"] == "idempotency_key_reused"


def test_an_empty_idempotency_key_is_a_422_naming_the_header_and_writes_nothing(client: TestClient) -> None:
    customer_id = register(client)
    position = log_position(client)

    detail = command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"n": 1}},
                     status=422, **{"Idempotency-Key": ""})["detail"]

    assert [error["loc"] for error in detail] == [["header", "idempotency-key"]]
    assert log_position(client) == position


def test_an_idempotency_key_reused_for_another_command_is_a_422(client: TestClient) -> None:
    customer_id = register(client)
    command(client, f"/customers/{customer_id}/facts", MANAGER, {"group": "needs", "facts": {"payroll": True}},
            **{"Idempotency-Key": "k-19"})

    refused = command(client, f"/customers/{customer_id}/key-customer", MANAGER, {"reason": "large employer"},
                      status=422, **{"Idempotency-Key": "k-19"})

    assert refused["code"] == "idempotency_key_reused"


def test_two_users_idempotency_keys_never_collide(client: TestClient) -> None:
    key = {"Idempotency-Key": "onboarding-form-1"}
    li = command(client, "/customers", MANAGER, customer_body(manager_id=MANAGER), status=201, **key)
    qian = command(client, "/customers", "mgr-qian", customer_body(manager_id="mgr-qian"), status=201, **key)

    assert li["aggregate_id"] != qian["aggregate_id"]
    assert (li["replayed"], qian["replayed"]) == (False, False)


# --------------------------------------------------------------------------
# Evidence, serialisation
# --------------------------------------------------------------------------


def test_the_request_id_is_echoed_and_recorded_with_the_actor_on_the_event(client: TestClient) -> None:
    response = client.post("/customers", json=customer_body(),
                           headers={**bearer(client, MANAGER), "X-Request-ID": "req-2025-0042",
                                    "Idempotency-Key": "form-1"})
    assert response.headers["X-Request-ID"] == "req-2025-0042"
    application: TuohuApplication = client.app.state.application

    [registered] = application.events.get(uuid.UUID(response.json()["aggregate_id"]))

    assert (registered.actor_id, registered.actor_role, registered.channel, registered.correlation_id,
            registered.command_id) == ("mgr-li", "customer_manager", "api", "req-2025-0042", "form-1")


def test_a_request_id_is_generated_when_the_client_sends_none(client: TestClient) -> None:
    response = client.get("/health")

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_times_are_returned_in_utc_with_the_offset_written_out(client: TestClient) -> None:
    customer_id = register(client)
    visit_id = command(client, "/visits", MANAGER, plan_visit_body(customer_id), status=201)["aggregate_id"]

    visit = get(client, f"/visits/{visit_id}")

    assert visit["scheduled_at"] == "2025-03-03T01:30:00+00:00"  # 09:30 at +08:00
    assert UTC_ISO.match(visit["created_on"])
    row = get(client, "/visits")["data"][0]
    assert UTC_ISO.match(row["created_at"]) and UTC_ISO.match(row["updated_at"])


def test_money_round_trips_as_an_exact_decimal_string(client: TestClient) -> None:
    customer_id = qualified_customer(client)
    command(client, f"/customers/{customer_id}/account-application", MANAGER,
            {"account_type": "corporate_current", "documents": ["business licence"]})
    command(client, f"/customers/{customer_id}/document-review", OPERATIONS, {"accepted": True})
    command(client, f"/customers/{customer_id}/account", OPERATIONS, {"account_number": "6222-0001-0043"})

    command(client, f"/customers/{customer_id}/business-figures", OPERATIONS, {
        "period": "2025-03", "currency": "CNY", "deposit_balance": "1234567.89", "loans_disbursed": 0,
        "fee_income": "0.10"})

    figures = get(client, f"/customers/{customer_id}")["business_figures"]["2025-03"]
    assert figures == {"currency": "CNY", "deposit_balance": "1234567.89", "loans_disbursed": "0",
                       "fee_income": "0.10"}


# --------------------------------------------------------------------------
# Read-model listings and health
# --------------------------------------------------------------------------


def test_list_routes_return_the_created_rows(client: TestClient) -> None:
    first = qualified_customer(client)
    second = register(client, "mgr-qian")
    visit_id = command(client, "/visits", MANAGER, plan_visit_body(first), status=201)["aggregate_id"]
    contract_id = approved_contract(client, first)
    draft_id = command(client, "/proposals", "mgr-qian", proposal_body(second), status=201)["aggregate_id"]
    case_id = command(client, "/risk-cases", RISK_OFFICER, {
        "subject_type": "contract", "subject_id": contract_id, "category": "operational",
        "description": "signatory authority not yet verified"}, status=201)["aggregate_id"]

    assert {row["id"] for row in get(client, "/customers")["data"]} == {first, second}
    assert [row["id"] for row in get(client, "/customers?manager_id=mgr-qian")["data"]] == [second]
    assert [row["id"] for row in get(client, "/customers?stage=qualified")["data"]] == [first]
    visits = get(client, f"/visits?customer_id={first}")["data"]
    assert [(row["id"], row["status"], row["created_by"]) for row in visits] == [(visit_id, "planned", "mgr-li")]
    assert [row["id"] for row in get(client, "/proposals?status=draft")["data"]] == [draft_id]
    assert [(row["id"], row["status"]) for row in get(client, "/contracts")["data"]] == [(contract_id, "approved")]
    cases = get(client, "/risk-cases")["data"]
    assert [(row["id"], row["customer_id"]) for row in cases] == [(case_id, first)]  # the contract's customer


def test_customers_are_found_by_name_and_by_their_highest_open_risk_level(client: TestClient) -> None:
    precision = register(client)
    textiles = command(client, "/customers", MANAGER, customer_body(display_name="Minhang Textiles Co."),
                       status=201)["aggregate_id"]
    avoid_risk_case(client, textiles)  # assessed high

    assert [row["id"] for row in get(client, "/customers?q=TEXTILES")["data"]] == [textiles]
    assert [row["id"] for row in get(client, "/customers?risk_level=high")["data"]] == [textiles]
    assert [row["id"] for row in get(client, "/customers?q=precision")["data"]] == [precision]
    assert get(client, f"/risk-cases?created_by=risk-zhou&customer_id={textiles}")["data"][0]["level"] == "high"


def test_a_list_reflects_every_recorded_event(client: TestClient) -> None:
    register(client)

    page = get(client, "/customers?limit=1")

    assert page["position"] == log_position(client)
    assert (page["limit"], page["offset"], len(page["data"])) == (1, 0, 1)


def test_health_reports_the_event_log_position(client: TestClient) -> None:
    assert get(client, "/health") == {"status": "ok", "position": client.start}  # the users' events
    register(client)  # one event
    assert get(client, "/health") == {"status": "ok", "position": client.start + 1}


def test_every_use_case_has_one_post_route(client: TestClient) -> None:
    plumbing = {"load", "position", "register_transcodings", "construct_mapper", "construct_event_store", "close"}
    use_cases = {name for name, value in vars(TuohuApplication).items()
                 if callable(value) and not name.startswith("_") and name not in plumbing}
    schema = get(client, "/openapi.json")

    posts = [op["operationId"] for ops in schema["paths"].values() for method, op in ops.items() if method == "post"]

    assert sorted(posts) == sorted(use_cases)
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------
# The background catch-up runner
# --------------------------------------------------------------------------


def test_the_read_model_catches_up_in_the_background(client: TestClient) -> None:
    register(client)  # one event after the users'

    assert client.app.state.read_models.wait_for(client.start + 1, timeout=5)


def stop_the_pipeline(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: Any, **__: Any) -> dict[str, int]:
        raise ProjectionFailed("pipeline", 7, "LookupError: no row")

    monkeypatch.setattr(client.app.state.read_models.runner, "catch_up", fail)


def test_the_follower_logs_a_stopped_projection_and_keeps_running(client: TestClient, monkeypatch, caplog) -> None:
    with caplog.at_level(logging.ERROR):
        stop_the_pipeline(client, monkeypatch)
        time.sleep(1.2)  # more than two ticks of 0.5 s

    assert client.app.state.read_model_follower.is_alive()
    assert any("stopped at position 7" in record.getMessage() for record in caplog.records)


def test_a_read_after_a_write_answers_503_with_retry_after_while_the_read_model_is_stopped(
        client: TestClient, monkeypatch) -> None:
    stop_the_pipeline(client, monkeypatch)
    read_models = client.app.state.read_models
    client.app.state.consistency_timeout = 0.2
    register(client)
    position = client.last_position
    read_models.runner._record_error("pipeline", read_models.store.active_generation("pipeline"), position,
                                     "LookupError: no row")

    for path in ("/customers", "/reports/funnel"):
        response = client.get(path, params={"consistent_with": position}, headers=bearer(client, AUDITOR))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["code"] == "read_model_stopped"
        assert "LookupError: no row" in response.json()["detail"]


def test_a_read_after_a_write_includes_the_write(client: TestClient) -> None:
    for _ in range(3):
        customer_id = register(client)
        response = client.get("/customers", params={"consistent_with": client.last_position},
                              headers=bearer(client, AUDITOR))
        assert response.status_code == 200
        assert customer_id in {row["id"] for row in response.json()["data"]}


def test_the_follower_stops_on_shutdown(tmp_path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as test_client:
        follower = test_client.app.state.read_model_follower
        assert follower.is_alive()

    assert not follower.is_alive()


def test_nothing_is_bootstrapped_before_startup(tmp_path) -> None:
    create_app(Settings(data_dir=tmp_path / "data", database_url=None))

    assert not (tmp_path / "data").exists()

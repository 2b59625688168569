"""Customer: registration, screening, manual review, account opening, service (measures §2.1, §2.2, §2.5).

Also the command context every command carries (who / when / how), since a
customer's history is where an auditor first reads that evidence.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from domain.base import Context, IllegalTransition, InvalidValue, MakerCheckerViolation, ReasonRequired
from domain.customer import (Customer, CustomerNotScreened, ManagerNotEligible, ReviewerIsCustomerManager,
                             ReviewerIsRegistrar, Successor)

MANAGER = "mgr-li"
REVIEWER = "rev-wang"
OPERATIONS = "ops-zhou"

MGR_HE = Successor("mgr-he", "customer_manager", None, active=True)
"""A bank-wide customer manager, to whom any customer may be handed."""


def event_types(events):
    return [type(e) for e in events]


# ------------------------------------------------------------------ the command context


def test_context_refuses_an_empty_actor():
    with pytest.raises(InvalidValue) as refused:
        Context(actor_id="  ", actor_role="reviewer")
    assert refused.value.field == "actor_id"


def test_context_refuses_an_empty_role():
    with pytest.raises(InvalidValue) as refused:
        Context(actor_id="rev-wang", actor_role="")
    assert refused.value.field == "actor_role"


def test_context_refuses_a_business_time_without_a_timezone():
    with pytest.raises(InvalidValue) as refused:
        Context(actor_id="rev-wang", actor_role="reviewer", occurred_at=datetime(2024, 3, 1, 9, 30))
    assert refused.value.field == "occurred_at"


def test_context_converts_a_business_time_in_another_zone_to_utc():
    beijing = timezone(timedelta(hours=8))
    ctx = Context(actor_id="rev-wang", actor_role="reviewer", occurred_at=datetime(2024, 3, 1, 17, 30, tzinfo=beijing))
    assert ctx.occurred_at == datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)
    assert ctx.occurred_at.tzinfo is timezone.utc


def test_context_stores_a_zero_offset_local_time_as_utc():
    london_winter = datetime(2024, 1, 15, 9, 30, tzinfo=ZoneInfo("Europe/London"))
    ctx = Context(actor_id="rev-wang", actor_role="reviewer", occurred_at=london_winter)
    assert ctx.occurred_at.tzinfo is timezone.utc
    assert ctx.occurred_at == datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc)


def test_context_business_time_defaults_to_now_in_utc():
    before = datetime.now(timezone.utc)
    ctx = Context(actor_id="rev-wang", actor_role="reviewer")
    after = datetime.now(timezone.utc)
    assert before <= ctx.occurred_at <= after
    assert ctx.occurred_at.tzinfo is timezone.utc


def test_context_gives_each_command_its_own_correlation_id_unless_told():
    first = Context(actor_id="rev-wang", actor_role="reviewer")
    second = Context(actor_id="rev-wang", actor_role="reviewer")
    assert first.correlation_id and second.correlation_id
    assert first.correlation_id != second.correlation_id


# ------------------------------------------------------------------ registration (§2.1, §2.2 step 1)


def test_registering_a_prospect_records_who_manages_it_and_where_it_came_from(ctx):
    customer = Customer.register(
        ctx(MANAGER), kind="corporate", acquisition_channel="partner", source_detail="SME association fair",
        segment="manufacturing SME", manager_id=MANAGER, branch="Shenzhen Futian", display_name="Huaxin Ltd",
    )
    [event] = customer.collect_events()
    assert isinstance(event, Customer.Registered)
    assert (event.kind, event.acquisition_channel, event.source_detail) == ("corporate", "partner", "SME association fair")
    assert (event.segment, event.manager_id, event.branch) == ("manufacturing SME", MANAGER, "Shenzhen Futian")
    assert customer.stage == "registered"
    assert customer.open_risk_cases == []


def test_registering_keeps_a_given_customer_id(ctx):
    wanted = uuid.uuid4()
    customer = Customer.register(ctx(), kind="retail", acquisition_channel="online", source_detail="web form",
                                 segment="students", manager_id=MANAGER, branch="HQ", customer_id=wanted)
    assert customer.id == wanted


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "government"), ("acquisition_channel", "carrier pigeon"), ("source_detail", " "),
     ("segment", ""), ("manager_id", ""), ("branch", "  ")],
)
def test_registration_refuses_a_bad_field_and_names_it(ctx, field, value):
    fields = dict(kind="retail", acquisition_channel="branch", source_detail="counter", segment="students",
                  manager_id=MANAGER, branch="HQ")
    fields[field] = value
    with pytest.raises(InvalidValue) as refused:
        Customer.register(ctx(), **fields)
    assert refused.value.field == field


# ------------------------------------------------------------------ facts and credit standing (§2.1, §2.2)


def test_facts_of_one_group_are_recorded_and_merged(given, ctx):
    customer = given.registered_customer()
    customer.record_facts(ctx(), group="basic", facts={"age": 34, "job": "technician"})
    customer.record_facts(ctx(), group="basic", facts={"job": "management"})
    assert event_types(customer.collect_events()) == [Customer.FactsRecorded, Customer.FactsRecorded]
    assert customer.facts["basic"] == {"age": 34, "job": "management"}
    assert customer.facts["financial"] == {}


def test_facts_must_belong_to_one_of_the_four_groups(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.record_facts(ctx(), group="gossip", facts={"x": 1})
    assert refused.value.field == "group"
    assert customer.collect_events() == []


def test_recording_facts_needs_at_least_one_fact(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.record_facts(ctx(), group="needs", facts={})
    assert refused.value.field == "facts"


def test_credit_standing_is_recorded_with_its_source(given, ctx):
    customer = given.registered_customer()
    customer.record_credit_standing(ctx(), source="PBOC credit bureau", result="no_default", rating="A")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.CreditStandingRecorded)
    assert customer.credit_standing == {"source": "PBOC credit bureau", "result": "no_default", "rating": "A"}


def test_credit_standing_needs_its_source(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.record_credit_standing(ctx(), source="", result="no_default")
    assert refused.value.field == "source"


# ------------------------------------------------------------------ automated screening (§2.2 step 2)


def test_screening_a_registered_customer_makes_it_screened(given, ctx):
    customer = given.registered_customer()
    customer.record_screening(ctx("system", "system"), model_name="retail-scorecard", model_version="1.0",
                              inputs={"age": 30}, score=60, contributions={"base": 50, "age": 10}, outcome="refer")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.Screened)
    assert (event.score, event.outcome, event.contributions) == (60, "refer", {"base": 50, "age": 10})
    assert customer.stage == "screened"


def test_a_screened_customer_may_be_screened_again(given, ctx):
    customer = given.screened_customer()
    customer.record_screening(ctx("system", "system"), model_name="retail-scorecard", model_version="1.0",
                              inputs={"age": 30}, score=75, contributions={"base": 50, "credit_standing": 25},
                              outcome="pass")
    assert event_types(customer.collect_events()) == [Customer.Screened]
    assert customer.stage == "screened"
    assert customer.screening["outcome"] == "pass"


def test_a_reviewed_customer_cannot_be_screened_again(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(IllegalTransition):
        customer.record_screening(ctx("system", "system"), model_name="retail-scorecard", model_version="1.0",
                                  inputs={}, score=50, contributions={"base": 50}, outcome="refer")
    assert customer.collect_events() == []


def test_screening_outcome_must_be_pass_refer_or_decline(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.record_screening(ctx("system", "system"), model_name="m", model_version="1", inputs={},
                                  score=50, contributions={}, outcome="maybe")
    assert refused.value.field == "outcome"


# ------------------------------------------------------------------ manual review (§2.2 step 3)


def test_a_reviewer_other_than_the_manager_qualifies_a_screened_customer(given, ctx):
    customer = given.screened_customer(manager_id=MANAGER)
    customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason="payslips and ID verified")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.Reviewed)
    assert (event.decision, event.reason, event.actor_id) == ("qualified", "payslips and ID verified", REVIEWER)
    assert customer.stage == "qualified"
    assert customer.manual_review == {"decision": "qualified", "reviewer_id": REVIEWER,
                                      "reason": "payslips and ID verified"}


def test_a_reviewer_may_reject_a_screened_customer(given, ctx):
    customer = given.screened_customer()
    customer.review(ctx(REVIEWER, "reviewer"), decision="rejected", reason="address could not be confirmed")
    [event] = customer.collect_events()
    assert event.decision == "rejected"
    assert customer.stage == "rejected"


def test_reviewer_may_not_be_the_customers_manager(given, ctx):
    customer = given.screened_customer(manager_id=MANAGER)
    with pytest.raises(ReviewerIsCustomerManager) as refused:
        customer.review(ctx(MANAGER, "reviewer"), decision="qualified", reason="looks fine to me")
    assert isinstance(refused.value, MakerCheckerViolation)
    assert customer.collect_events() == []
    assert customer.stage == "screened"


def test_reviewer_may_not_be_the_manager_the_customer_was_reassigned_to(given, ctx):
    customer = given.screened_customer(manager_id=MANAGER)
    customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id=REVIEWER, reason="team rebalanced",
                              successor=Successor(REVIEWER, "customer_manager", customer.branch, active=True))
    customer.collect_events()
    with pytest.raises(ReviewerIsCustomerManager):
        customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason="verified")


@pytest.mark.parametrize(("successor", "why"), [
    (None, "no user is named"),
    (Successor("mgr-ma", "customer_manager", None, active=False), "no longer an active user"),
    (Successor("mgr-ma", "reviewer", None, active=True), "not a customer manager"),
    (Successor("mgr-ma", "customer_manager", "another-branch", active=True), "works for branch 'another-branch'"),
], ids=["unknown", "revoked", "another-role", "another-branch"])
def test_a_customer_is_handed_only_to_an_active_customer_manager_of_its_branch(given, ctx, successor, why):
    customer = given.screened_customer(manager_id=MANAGER)
    with pytest.raises(ManagerNotEligible, match=why) as refused:
        customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id="mgr-ma", successor=successor,
                                  reason="team rebalanced")
    assert refused.value.code == "manager_not_eligible"
    assert customer.collect_events() == []
    assert customer.manager_id == MANAGER


@pytest.mark.parametrize("branch", ["same", None], ids=["of-its-branch", "bank-wide"])
def test_a_customer_is_handed_to_an_active_customer_manager_of_its_branch_or_a_bank_wide_one(given, ctx, branch):
    customer = given.screened_customer(manager_id=MANAGER)
    successor = Successor("mgr-ma", "customer_manager", customer.branch if branch == "same" else None, active=True)
    customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id="mgr-ma", successor=successor,
                              reason="team rebalanced")
    assert customer.manager_id == "mgr-ma"


def test_reviewer_may_not_be_the_person_who_registered_the_customer(ctx):
    customer = Customer.register(ctx("desk-wu", "customer_manager"), kind="retail", acquisition_channel="branch",
                                 source_detail="counter", segment="s", manager_id=MANAGER, branch="HQ")
    customer.record_screening(ctx(MANAGER, "system"), model_name="retail-scorecard", model_version="1.0", inputs={},
                              score=60, contributions={"base": 60}, outcome="refer")
    customer.collect_events()
    with pytest.raises(ReviewerIsRegistrar) as refused:
        customer.review(ctx("desk-wu", "reviewer"), decision="qualified", reason="verified")
    assert isinstance(refused.value, MakerCheckerViolation)
    assert refused.value.code == "reviewer_is_registrar"
    assert customer.collect_events() == []
    assert customer.stage == "screened"


def test_a_customer_cannot_be_reviewed_before_it_is_screened(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(CustomerNotScreened):
        customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason="verified")
    assert customer.collect_events() == []


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_review_needs_a_reason(given, ctx, reason):
    customer = given.screened_customer()
    with pytest.raises(ReasonRequired):
        customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason=reason)
    assert customer.collect_events() == []


def test_a_review_decision_is_qualified_or_rejected(given, ctx):
    customer = given.screened_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.review(ctx(REVIEWER, "reviewer"), decision="maybe later", reason="unsure")
    assert refused.value.field == "decision"


def test_a_qualified_customer_cannot_be_reviewed_again(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(IllegalTransition) as refused:
        customer.review(ctx(REVIEWER, "reviewer"), decision="rejected", reason="second thoughts")
    assert refused.value.state == "qualified"


def test_a_rejected_customer_cannot_be_reviewed_again(given, ctx):
    customer = given.rejected_customer()
    with pytest.raises(IllegalTransition):
        customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason="appeal")


# ------------------------------------------------------------------ account opening (§2.5 step 1)


def test_a_qualified_customer_applies_for_an_account_with_documents(given, ctx):
    customer = given.qualified_customer()
    customer.apply_for_account(ctx(OPERATIONS, "operations"), account_type="current", documents=["id card"])
    [event] = customer.collect_events()
    assert isinstance(event, Customer.AccountOpeningApplied)
    assert (event.account_type, event.documents) == ("current", ["id card"])
    assert customer.stage == "account_opening_applied"


def test_a_rejected_customer_cannot_apply_for_an_account(given, ctx):
    customer = given.rejected_customer()
    with pytest.raises(IllegalTransition):
        customer.apply_for_account(ctx(OPERATIONS, "operations"), account_type="current", documents=["id card"])


def test_a_screened_but_unreviewed_customer_cannot_apply_for_an_account(given, ctx):
    customer = given.screened_customer()
    with pytest.raises(IllegalTransition):
        customer.apply_for_account(ctx(OPERATIONS, "operations"), account_type="current", documents=["id card"])


def test_an_account_application_needs_a_supporting_document(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.apply_for_account(ctx(OPERATIONS, "operations"), account_type="current", documents=[])
    assert refused.value.field == "documents"


def test_accepted_documents_let_the_account_be_opened(given, ctx):
    customer = given.customer_applied_for_account()
    customer.review_documents(ctx(OPERATIONS, "operations"), accepted=True)
    [event] = customer.collect_events()
    assert isinstance(event, Customer.DocumentsReviewed)
    assert (event.accepted, event.return_reasons) == (True, [])
    assert customer.stage == "documents_accepted"


def test_returned_documents_carry_the_reasons(given, ctx):
    customer = given.customer_applied_for_account()
    customer.review_documents(ctx(OPERATIONS, "operations"), accepted=False, return_reasons=["ID card expired"])
    [event] = customer.collect_events()
    assert (event.accepted, event.return_reasons) == (False, ["ID card expired"])
    assert customer.stage == "documents_returned"


def test_documents_cannot_be_returned_without_a_reason(given, ctx):
    customer = given.customer_applied_for_account()
    with pytest.raises(InvalidValue) as refused:
        customer.review_documents(ctx(OPERATIONS, "operations"), accepted=False, return_reasons=["  "])
    assert refused.value.field == "return_reasons"


def test_accepted_documents_take_no_return_reasons(given, ctx):
    customer = given.customer_applied_for_account()
    with pytest.raises(InvalidValue) as refused:
        customer.review_documents(ctx(OPERATIONS, "operations"), accepted=True, return_reasons=["ID card expired"])
    assert refused.value.field == "return_reasons"


def test_documents_cannot_be_reviewed_before_an_application(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(IllegalTransition):
        customer.review_documents(ctx(OPERATIONS, "operations"), accepted=True)


def test_a_customer_whose_documents_were_returned_may_apply_again(given, ctx):
    customer = given.customer_with_documents_returned()
    customer.apply_for_account(ctx(OPERATIONS, "operations"), account_type="current",
                               documents=["id card", "new proof of address"])
    assert event_types(customer.collect_events()) == [Customer.AccountOpeningApplied]
    assert customer.stage == "account_opening_applied"
    assert customer.application["documents"] == ["id card", "new proof of address"]


def test_an_account_is_opened_after_the_documents_are_accepted(given, ctx):
    customer = given.customer_with_documents_accepted()
    customer.open_account(ctx(OPERATIONS, "operations"), account_number="6222 0001 0002")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.AccountOpened)
    assert customer.account_number == "6222 0001 0002"
    assert customer.stage == "account_opened"


def test_an_account_cannot_be_opened_on_returned_documents(given, ctx):
    customer = given.customer_with_documents_returned()
    with pytest.raises(IllegalTransition):
        customer.open_account(ctx(OPERATIONS, "operations"), account_number="6222 0001 0002")


def test_an_account_needs_an_account_number(given, ctx):
    customer = given.customer_with_documents_accepted()
    with pytest.raises(InvalidValue) as refused:
        customer.open_account(ctx(OPERATIONS, "operations"), account_number=" ")
    assert refused.value.field == "account_number"


def test_products_are_signed_on_an_opened_account_once_each(given, ctx):
    customer = given.customer_with_account()
    customer.sign_products(ctx(OPERATIONS, "operations"), products=["debit card", "mobile banking"])
    customer.sign_products(ctx(OPERATIONS, "operations"), products=["mobile banking", "wealth plan"])
    assert event_types(customer.collect_events()) == [Customer.ProductsSigned, Customer.ProductsSigned]
    assert customer.products == ["debit card", "mobile banking", "wealth plan"]


def test_products_cannot_be_signed_before_the_account_is_opened(given, ctx):
    customer = given.customer_with_documents_accepted()
    with pytest.raises(IllegalTransition):
        customer.sign_products(ctx(OPERATIONS, "operations"), products=["debit card"])


def test_signing_products_needs_at_least_one_product(given, ctx):
    customer = given.customer_with_account()
    with pytest.raises(InvalidValue) as refused:
        customer.sign_products(ctx(OPERATIONS, "operations"), products=[])
    assert refused.value.field == "products"


# ------------------------------------------------------------------ team and key customers (§2.3, §3)


def test_reassigning_a_customer_records_both_managers_and_the_reason(given, ctx):
    customer = given.registered_customer(manager_id=MANAGER)
    customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id="mgr-he", successor=MGR_HE,
                              reason="Li moved to HQ")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.ManagerReassigned)
    assert (event.previous_manager_id, event.manager_id, event.reason) == (MANAGER, "mgr-he", "Li moved to HQ")
    assert customer.manager_id == "mgr-he"


def test_a_customer_cannot_be_reassigned_to_its_own_manager(given, ctx):
    customer = given.registered_customer(manager_id=MANAGER)
    with pytest.raises(InvalidValue) as refused:
        customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id=MANAGER, successor=None,
                                  reason="no change")
    assert refused.value.field == "manager_id"


def test_reassigning_a_customer_needs_a_reason(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(ReasonRequired):
        customer.reassign_manager(ctx("head-zhao", "branch_head"), manager_id="mgr-he", successor=MGR_HE,
                                  reason=None)


def test_marking_a_key_customer_records_the_reason(given, ctx):
    customer = given.registered_customer()
    customer.mark_key_customer(ctx("head-zhao", "branch_head"), reason="listed company")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.MarkedKeyCustomer)
    assert event.reason == "listed company"
    assert customer.is_key is True


def test_a_key_customer_cannot_be_marked_twice(given, ctx):
    customer = given.key_customer()
    with pytest.raises(InvalidValue) as refused:
        customer.mark_key_customer(ctx("head-zhao", "branch_head"), reason="again")
    assert refused.value.field == "is_key"


def test_marking_a_key_customer_needs_a_reason(given, ctx):
    customer = given.registered_customer()
    with pytest.raises(ReasonRequired):
        customer.mark_key_customer(ctx("head-zhao", "branch_head"), reason="")


# ------------------------------------------------------------------ follow-up and figures (§2.5 step 2, §5)


@pytest.mark.parametrize("satisfaction", [1, 5])
def test_a_follow_up_records_satisfaction_from_one_to_five(given, ctx, satisfaction):
    customer = given.customer_with_account()
    customer.record_follow_up(ctx(), satisfaction=satisfaction, feedback="app is easy to use")
    [event] = customer.collect_events()
    assert isinstance(event, Customer.FollowUpRecorded)
    assert event.satisfaction == satisfaction
    assert customer.follow_ups == 1


@pytest.mark.parametrize("satisfaction", [0, 6, True, 3.5])
def test_a_follow_up_refuses_satisfaction_outside_one_to_five(given, ctx, satisfaction):
    customer = given.customer_with_account()
    with pytest.raises(InvalidValue) as refused:
        customer.record_follow_up(ctx(), satisfaction=satisfaction, feedback="")
    assert refused.value.field == "satisfaction"


def test_a_follow_up_needs_an_opened_account(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(IllegalTransition):
        customer.record_follow_up(ctx(), satisfaction=4, feedback="")


def test_monthly_figures_are_kept_per_period(given, ctx):
    customer = given.customer_with_account()
    customer.report_business_figures(ctx(), period="2024-03", currency="CNY", deposit_balance=Decimal("120000.00"),
                                     loans_disbursed=Decimal("0"), fee_income=Decimal("35.50"))
    [event] = customer.collect_events()
    assert isinstance(event, Customer.BusinessFiguresReported)
    assert customer.business_figures["2024-03"] == {
        "currency": "CNY", "deposit_balance": Decimal("120000.00"), "loans_disbursed": Decimal("0"),
        "fee_income": Decimal("35.50"),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("period", "2024-13"), ("period", "2024-3"), ("currency", "cny"), ("currency", "YUAN"),
     ("deposit_balance", Decimal("-0.01")), ("loans_disbursed", 100.0), ("fee_income", Decimal("NaN"))],
)
def test_monthly_figures_refuse_a_bad_field_and_name_it(given, ctx, field, value):
    customer = given.customer_with_account()
    figures = dict(period="2024-03", currency="CNY", deposit_balance=Decimal("1"), loans_disbursed=Decimal("0"),
                   fee_income=Decimal("0"))
    figures[field] = value
    with pytest.raises(InvalidValue) as refused:
        customer.report_business_figures(ctx(), **figures)
    assert refused.value.field == field


def test_monthly_figures_need_an_opened_account(given, ctx):
    customer = given.qualified_customer()
    with pytest.raises(IllegalTransition):
        customer.report_business_figures(ctx(), period="2024-03", currency="CNY", deposit_balance=Decimal("1"),
                                         loans_disbursed=Decimal("0"), fee_income=Decimal("0"))


# ------------------------------------------------------------------ risk case links (§4)


def test_an_opened_risk_case_is_linked_to_the_customer(given, ctx):
    customer = given.registered_customer()
    case_id = uuid.uuid4()
    customer.link_risk_case(ctx("risk-sun", "risk_officer"), risk_case_id=case_id)
    assert event_types(customer.collect_events()) == [Customer.RiskCaseLinked]
    assert customer.open_risk_cases == [case_id]


def test_a_closed_risk_case_is_unlinked_from_the_customer(given, ctx):
    customer = given.registered_customer()
    kept, closed = uuid.uuid4(), uuid.uuid4()
    customer.link_risk_case(ctx("risk-sun", "risk_officer"), risk_case_id=kept)
    customer.link_risk_case(ctx("risk-sun", "risk_officer"), risk_case_id=closed)
    customer.collect_events()
    customer.unlink_risk_case(ctx("risk-sun", "risk_officer"), risk_case_id=closed)
    assert event_types(customer.collect_events()) == [Customer.RiskCaseUnlinked]
    assert customer.open_risk_cases == [kept]


def test_unlinking_a_case_the_customer_does_not_have_records_nothing(given, ctx):
    customer = given.registered_customer()
    customer.unlink_risk_case(ctx("risk-sun", "risk_officer"), risk_case_id=uuid.uuid4())
    assert customer.collect_events() == []


# ------------------------------------------------------------------ evidence on every event


def test_every_customer_event_carries_the_evidence_of_its_command(evidence_ctx, carries_evidence, now):
    before = now()
    # the registrar may not review the customer (maker-checker), so another person registers it
    registrar_ctx = dataclasses.replace(evidence_ctx, actor_id="registrar-desk", actor_role="customer_manager")
    customer = Customer.register(registrar_ctx, kind="retail", acquisition_channel="branch", source_detail="counter",
                                 segment="students", manager_id=MANAGER, branch="HQ")
    customer.record_facts(evidence_ctx, group="basic", facts={"age": 22})
    customer.record_credit_standing(evidence_ctx, source="bureau", result="no_default")
    customer.record_screening(evidence_ctx, model_name="retail-scorecard", model_version="1.0", inputs={},
                              score=50, contributions={"base": 50}, outcome="refer")
    customer.review(evidence_ctx, decision="qualified", reason="verified")
    customer.apply_for_account(evidence_ctx, account_type="current", documents=["id card"])
    customer.review_documents(evidence_ctx, accepted=True)
    customer.open_account(evidence_ctx, account_number="6222")
    customer.sign_products(evidence_ctx, products=["debit card"])
    customer.mark_key_customer(evidence_ctx, reason="rich")
    customer.reassign_manager(evidence_ctx, manager_id="mgr-he", successor=MGR_HE, reason="moved")
    customer.record_follow_up(evidence_ctx, satisfaction=4, feedback="fine")
    customer.report_business_figures(evidence_ctx, period="2024-03", currency="CNY", deposit_balance=Decimal("1"),
                                     loans_disbursed=Decimal("0"), fee_income=Decimal("0"))
    case_id = uuid.uuid4()
    customer.link_risk_case(evidence_ctx, risk_case_id=case_id)
    customer.unlink_risk_case(evidence_ctx, risk_case_id=case_id)
    events = customer.collect_events()
    after = now()
    assert len(events) == 15
    carries_evidence(events[0], registrar_ctx, recorded_between=(before, after))
    for event in events[1:]:
        carries_evidence(event, evidence_ctx, recorded_between=(before, after))


def test_decisions_on_a_customer_carry_their_reason_and_other_events_none(given, ctx):
    customer = given.screened_customer()
    customer.record_facts(ctx(), group="needs", facts={"product": "payroll"})
    customer.review(ctx(REVIEWER, "reviewer"), decision="qualified", reason="  verified  ")
    facts, review = customer.collect_events()
    assert facts.reason is None
    assert review.reason == "verified"

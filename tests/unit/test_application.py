"""The application's use cases over the library's SQLite event store.

Most tests use an in-memory SQLite database; those that need two application
instances, or a fresh instance reading what another wrote, share a file under
``tmp_path``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from application.app import CommandResult, ConcurrentUpdate, NotFound, TuohuApplication, VersionMismatch
from domain.base import Context, InvalidValue
from domain.contract import Contract, ContractSigningBlockedByRisk
from domain.customer import Customer, ReviewerIsCustomerManager
from domain.proposal import Proposal
from domain.receipt import CommandReceipt, IdempotencyKeyReused, receipt_id
from domain.risk import RiskCase
from domain.visit import PreparationRequired, Visit

MANAGER = "mgr-li"
REVIEWER = "rev-wang"
APPROVER = "head-zhao"
OFFICER = "risk-sun"
BEIJING = timezone(timedelta(hours=8))


def as_(actor_id: str = MANAGER, role: str = "customer_manager", **kwargs) -> Context:
    return Context(actor_id=actor_id, actor_role=role, **kwargs)


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


@pytest.fixture
def open_app(tmp_path):
    """``open_app()``: a new application instance over one shared SQLite file."""
    opened = []

    def _open() -> TuohuApplication:
        application = TuohuApplication(env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "5",
        })
        opened.append(application)
        return application

    yield _open
    for application in opened:
        application.close()


def log_size(app: TuohuApplication) -> int:
    return app.recorder.max_notification_id() or 0


# ------------------------------------------------------------------ givens through the use cases


def register(app, manager_id: str = MANAGER, **kwargs) -> uuid.UUID:
    fields = dict(kind="corporate", acquisition_channel="partner", source_detail="SME fair", segment="SME",
                  manager_id=manager_id, branch="Futian")
    fields.update(kwargs)
    return app.register_customer(as_(manager_id), **fields).aggregate_id


def screened(app) -> uuid.UUID:
    customer_id = register(app)
    app.screen_customer(as_("system", "system"), customer_id)
    return customer_id


def accepted_proposal(app, customer_id: uuid.UUID) -> uuid.UUID:
    proposal_id = app.draft_proposal(as_(), customer_id=customer_id, products=["payroll"],
                                     pricing_terms={"fee": "0.50"}, rights_and_obligations="salaries on the 10th"
                                     ).aggregate_id
    app.submit_proposal(as_(), proposal_id)
    app.approve_proposal(as_(APPROVER, "branch_head"), proposal_id)
    app.present_proposal(as_(), proposal_id)
    app.accept_proposal(as_(), proposal_id)
    return proposal_id


def approved_contract(app, customer_id: uuid.UUID) -> uuid.UUID:
    contract_id = app.draft_contract(as_(), proposal_id=accepted_proposal(app, customer_id)).aggregate_id
    app.review_contract_clauses(as_("legal-chen", "legal"), contract_id, findings=[])
    app.approve_contract(as_(APPROVER, "branch_head"), contract_id)
    return contract_id


def risk_case(app, customer_id: uuid.UUID, response: str, subject_type: str = "customer",
              subject_id: uuid.UUID | None = None) -> uuid.UUID:
    officer = as_(OFFICER, "risk_officer")
    case_id = app.identify_risk(officer, subject_type=subject_type, subject_id=subject_id or customer_id,
                                category="credit", description="overdue at another bank").aggregate_id
    app.assess_risk(officer, case_id, indicator_scores={"overdue": 10 if response == "accept" else 90})
    app.decide_risk_response(officer, case_id, response=response, measures=["review monthly"], reason="committee")
    return case_id


def close(app, case_id: uuid.UUID) -> None:
    officer = as_(OFFICER, "risk_officer")
    app.dispose_risk(officer, case_id, actions=["investigated"], findings="cleared")
    app.close_risk(officer, case_id, reason="cause removed")


def assert_growing(app, results: list[CommandResult]) -> None:
    positions = [r.position for r in results]
    assert all(isinstance(r, CommandResult) and not r.replayed for r in results)
    assert positions == sorted(set(positions)), positions
    assert positions[-1] == log_size(app)


# ------------------------------------------------------------------ results and positions


def test_an_empty_log_is_at_position_zero(app):
    assert app.position() == 0


def test_registering_a_customer_returns_its_id_its_first_version_and_the_log_position(app):
    result = app.register_customer(as_(), kind="retail", acquisition_channel="online", source_detail="web form",
                                   segment="students", manager_id=MANAGER, branch="HQ")
    assert isinstance(result.aggregate_id, uuid.UUID)
    assert (result.version, result.position, result.replayed) == (1, 1, False)
    assert app.load(Customer, result.aggregate_id).stage == "registered"


def test_each_customer_use_case_returns_the_new_version_and_a_growing_position(app):
    ops = as_("ops-zhou", "operations")
    customer_id = register(app)
    app.add_user(as_("admin-wu", "admin"), name="mgr-he", role="customer_manager", branch="Futian")
    results = [
        app.record_facts(as_(), customer_id, group="basic", facts={"age": 41}),
        app.record_credit_standing(as_(), customer_id, source="bureau", result="no_default"),
        app.screen_customer(as_("system", "system"), customer_id),
        app.review_customer(as_(REVIEWER, "reviewer"), customer_id, decision="qualified", reason="verified"),
        app.apply_for_account(ops, customer_id, account_type="current", documents=["licence"]),
        app.review_documents(ops, customer_id, accepted=False, return_reasons=["licence expired"]),
        app.apply_for_account(ops, customer_id, account_type="current", documents=["new licence"]),
        app.review_documents(ops, customer_id, accepted=True),
        app.open_account(ops, customer_id, account_number="6222"),
        app.sign_products(ops, customer_id, products=["payroll"]),
        app.reassign_manager(as_(APPROVER, "branch_head"), customer_id, manager_id="mgr-he", reason="moved"),
        app.mark_key_customer(as_(APPROVER, "branch_head"), customer_id, reason="listed"),
        app.record_follow_up(as_("mgr-he"), customer_id, satisfaction=5, feedback="great"),
        app.report_business_figures(as_("mgr-he"), customer_id, period="2024-03", currency="CNY",
                                    deposit_balance=Decimal("1000.00"), loans_disbursed=Decimal("0"),
                                    fee_income=Decimal("12.30")),
    ]
    assert_growing(app, results)
    assert [r.version for r in results] == list(range(2, 2 + len(results)))
    assert app.load(Customer, customer_id).version == results[-1].version


def test_each_visit_use_case_returns_a_growing_position(app):
    customer_id = register(app)
    results = [app.plan_visit(as_(), customer_id=customer_id, purpose="payroll", staff=[MANAGER], method="phone",
                              kind="acquisition", scheduled_at=datetime(2024, 3, 5, 10, tzinfo=BEIJING))]
    visit_id = results[0].aggregate_id
    results += [
        app.prepare_visit(as_(), visit_id, background="exporter", materials=[], talking_points=[]),
        app.reschedule_visit(as_(), visit_id, scheduled_at=datetime(2024, 3, 6, 10, tzinfo=BEIJING), reason="ill"),
        app.conduct_visit(as_(), visit_id, outcome="interested", duration_seconds=600),
        app.route_visit_feedback(as_(), visit_id, departments=["product"], feedback="wants API"),
    ]
    other = app.plan_visit(as_(), customer_id=customer_id, purpose="follow-up", staff=[MANAGER], method="video",
                           kind="follow_up", scheduled_at=datetime(2024, 4, 1, 10, tzinfo=BEIJING))
    results += [other, app.cancel_visit(as_(), other.aggregate_id, reason="not needed")]
    assert_growing(app, results)
    assert app.load(Visit, visit_id).status == "conducted"
    assert app.load(Visit, other.aggregate_id).status == "cancelled"


def test_each_proposal_and_contract_use_case_returns_a_growing_position(app):
    customer_id = register(app)
    content = dict(products=["payroll"], pricing_terms={"fee": "0.50"}, rights_and_obligations="terms")
    results = [app.draft_proposal(as_(), customer_id=customer_id, **content)]
    proposal_id = results[0].aggregate_id
    results += [
        app.submit_proposal(as_(), proposal_id),
        app.return_proposal(as_(APPROVER, "branch_head"), proposal_id, reason="fee too low"),
        app.revise_proposal(as_(), proposal_id, reason="fee raised", **{**content, "pricing_terms": {"fee": "0.80"}}),
        app.submit_proposal(as_(), proposal_id),
        app.approve_proposal(as_(APPROVER, "branch_head"), proposal_id),
        app.present_proposal(as_(), proposal_id),
        app.accept_proposal(as_(), proposal_id),
    ]
    results.append(app.draft_contract(as_(), proposal_id=proposal_id))
    contract_id = results[-1].aggregate_id
    results += [
        app.review_contract_clauses(as_("legal-chen", "legal"), contract_id,
                                    findings=[{"clause": "4", "finding": "penalty too high"}]),
        app.resolve_contract_finding(as_("legal-chen", "legal"), contract_id, finding_number=1, resolution="capped"),
        app.approve_contract(as_(APPROVER, "branch_head"), contract_id),
        app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang"),
        app.terminate_contract(as_(APPROVER, "branch_head"), contract_id, reason="customer left"),
    ]
    declined = app.draft_proposal(as_(), customer_id=customer_id, **content)
    results += [declined, app.withdraw_proposal(as_(), declined.aggregate_id, reason="duplicate")]
    assert_growing(app, results)
    assert app.load(Proposal, proposal_id).revision == 2
    assert app.load(Contract, contract_id).status == "terminated"


def test_each_risk_use_case_returns_a_growing_position(app):
    customer_id = register(app)
    officer = as_(OFFICER, "risk_officer")
    results = [app.identify_risk(officer, subject_type="customer", subject_id=customer_id, category="market",
                                 description="sector downturn")]
    case_id = results[0].aggregate_id
    results += [
        app.assess_risk(officer, case_id, indicator_scores={"sector": 55}),
        app.decide_risk_response(officer, case_id, response="reduce", measures=["stricter review"], reason="medium"),
        app.record_risk_reading(officer, case_id, indicator="sector_index", value=Decimal("120"),
                                threshold=Decimal("100"), direction="above"),
        app.dispose_risk(officer, case_id, actions=["reviewed"], findings="contained"),
        app.close_risk(officer, case_id, reason="contained"),
    ]
    assert_growing(app, results)
    assert app.load(RiskCase, case_id).warnings == 1


def test_a_command_that_writes_two_aggregates_reports_the_position_of_its_last_event(app):
    customer_id = register(app)
    before = log_size(app)
    result = app.identify_risk(as_(OFFICER, "risk_officer"), subject_type="customer", subject_id=customer_id,
                               category="credit", description="overdue")
    # One event for the new case, one for the customer's link.
    assert log_size(app) == before + 2
    assert result.position == before + 2
    assert result.aggregate_id != customer_id


# ------------------------------------------------------------------ screening through the application (§2.2)


def test_screening_scores_the_customers_recorded_facts(app):
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 35, "job": "technician"})
    app.record_facts(as_(), customer_id, group="financial",
                     facts={"balance": Decimal("2500"), "housing_loan": True, "personal_loan": False})
    app.record_credit_standing(as_(), customer_id, source="bureau", result="no_default")
    app.screen_customer(as_("system", "system"), customer_id)
    customer = app.load(Customer, customer_id)
    # Table: base 50, no_default +30, age 26-60 +10, balance 1,000-9,999.99 +10, housing -5, no personal 0, job +5.
    assert customer.screening["score"] == 50 + 30 + 10 + 10 - 5 + 0 + 5
    assert customer.screening["outcome"] == "pass"
    assert customer.stage == "screened"
    screened_event = list(app.events.get(customer_id))[-1]
    assert screened_event.contributions == {"base": 50, "credit_standing": 30, "age": 10, "balance": 10,
                                            "housing_loan": -5, "personal_loan": 0, "employment": 5}
    assert screened_event.inputs["balance"] == Decimal("2500")


def test_screening_a_customer_without_facts_refers_it_at_the_base_score(app):
    customer_id = register(app)
    app.screen_customer(as_("system", "system"), customer_id)
    customer = app.load(Customer, customer_id)
    assert (customer.screening["score"], customer.screening["outcome"]) == (50, "refer")


def test_a_domain_refusal_through_the_application_writes_nothing(app):
    customer_id = screened(app)
    before = log_size(app)
    with pytest.raises(ReviewerIsCustomerManager):
        app.review_customer(as_(MANAGER, "reviewer"), customer_id, decision="qualified", reason="fine")
    assert log_size(app) == before


# ------------------------------------------------------------------ a repeated command id has no second effect


def test_a_repeated_registration_command_id_returns_the_first_customer_and_writes_nothing(app):
    ctx = as_(command_id="client-cmd-1")
    fields = dict(kind="retail", acquisition_channel="online", source_detail="web", segment="students",
                  manager_id=MANAGER, branch="HQ")
    first = app.register_customer(ctx, **fields)
    before = log_size(app)
    again = app.register_customer(ctx, **fields)
    assert again.aggregate_id == first.aggregate_id
    assert again.replayed is True
    assert log_size(app) == before


def test_a_repeated_command_id_on_an_existing_customer_records_the_facts_once(app):
    customer_id = register(app)
    ctx = as_(command_id="client-cmd-2")
    first = app.record_facts(ctx, customer_id, group="needs", facts={"wants": "payroll"})
    before = log_size(app)
    again = app.record_facts(ctx, customer_id, group="needs", facts={"wants": "payroll"})
    assert (again.aggregate_id, again.version, again.replayed) == (customer_id, first.version, True)
    assert log_size(app) == before
    facts_events = [e for e in app.events.get(customer_id) if isinstance(e, Customer.FactsRecorded)]
    assert len(facts_events) == 1


def test_a_repeated_command_id_opens_one_risk_case_and_links_it_once(app):
    customer_id = register(app)
    ctx = as_(OFFICER, "risk_officer", command_id="client-cmd-3")
    first = app.identify_risk(ctx, subject_type="customer", subject_id=customer_id, category="credit",
                              description="overdue")
    before = log_size(app)
    again = app.identify_risk(ctx, subject_type="customer", subject_id=customer_id, category="credit",
                              description="overdue")
    assert again.aggregate_id == first.aggregate_id
    assert log_size(app) == before
    assert app.load(Customer, customer_id).open_risk_cases == [first.aggregate_id]


def test_a_repeated_command_id_closes_a_risk_case_once(app):
    customer_id = register(app)
    case_id = risk_case(app, customer_id, "reduce")
    app.dispose_risk(as_(OFFICER, "risk_officer"), case_id, actions=["checked"], findings="ok")
    ctx = as_(OFFICER, "risk_officer", command_id="client-cmd-4")
    app.close_risk(ctx, case_id, reason="done")
    before = log_size(app)
    again = app.close_risk(ctx, case_id, reason="done")
    assert again.replayed is True
    assert log_size(app) == before


def test_a_command_id_is_remembered_by_another_application_over_the_same_store(open_app):
    writer, reader = open_app(), open_app()
    ctx = as_(command_id="client-cmd-5")
    fields = dict(kind="retail", acquisition_channel="online", source_detail="web", segment="students",
                  manager_id=MANAGER, branch="HQ")
    first = writer.register_customer(ctx, **fields)
    before = log_size(reader)
    again = reader.register_customer(ctx, **fields)
    assert (again.aggregate_id, again.replayed) == (first.aggregate_id, True)
    assert log_size(reader) == before


def test_a_command_refused_by_a_rule_leaves_its_command_id_free_for_a_corrected_retry(app):
    customer_id = screened(app)
    with pytest.raises(ReviewerIsCustomerManager):
        app.review_customer(as_(MANAGER, "reviewer", command_id="client-cmd-6"), customer_id,
                            decision="qualified", reason="fine")
    result = app.review_customer(as_(REVIEWER, "reviewer", command_id="client-cmd-6"), customer_id,
                                 decision="qualified", reason="verified")
    assert result.replayed is False
    assert app.load(Customer, customer_id).stage == "qualified"


def test_the_command_id_is_kept_on_the_events_it_caused_and_on_its_receipt(app):
    ctx = as_(command_id="client-cmd-7")
    result = app.register_customer(ctx, kind="retail", acquisition_channel="online", source_detail="web",
                                   segment="students", manager_id=MANAGER, branch="HQ")
    [registered] = app.events.get(result.aggregate_id)
    assert registered.command_id == "client-cmd-7"
    receipts = [app.mapper.to_domain_event(n) for n in app.notification_log.select(start=1, limit=10)
                if n.originator_id != result.aggregate_id]
    [receipt] = receipts
    assert isinstance(receipt, CommandReceipt.Accepted)
    assert (receipt.command_name, receipt.aggregate_id, receipt.command_id) == (
        "register_customer", result.aggregate_id, "client-cmd-7")


def test_a_command_id_is_scoped_by_the_actor_so_two_clients_keys_never_collide(app):
    customer_id = register(app)
    first = app.record_facts(as_(MANAGER, command_id="form-1"), customer_id, group="needs", facts={"a": 1})
    other = app.record_facts(as_("mgr-qian", command_id="form-1"), customer_id, group="needs", facts={"a": 1})
    assert (first.replayed, other.replayed) == (False, False)
    assert other.version == first.version + 1


def test_a_command_id_reused_with_another_request_is_refused_and_writes_nothing(app):
    customer_id = register(app)
    app.record_facts(as_(command_id="form-2", request_hash="digest-a"), customer_id, group="needs", facts={"a": 1})
    before = log_size(app)
    with pytest.raises(IdempotencyKeyReused) as refused:
        app.record_facts(as_(command_id="form-2", request_hash="digest-b"), customer_id, group="needs",
                         facts={"a": 2})
    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "idempotency_key")
    assert log_size(app) == before


def test_a_command_id_reused_for_another_command_is_refused(app):
    customer_id = register(app)
    app.record_facts(as_(command_id="form-3"), customer_id, group="needs", facts={"a": 1})
    with pytest.raises(IdempotencyKeyReused, match="was used for record_facts, not mark_key_customer"):
        app.mark_key_customer(as_(command_id="form-3"), customer_id, reason="large employer")


def test_the_receipt_keeps_the_request_digest(app):
    result = app.register_customer(as_(command_id="form-4", request_hash="digest-a"), kind="retail",
                                   acquisition_channel="online", source_detail="web", segment="s",
                                   manager_id=MANAGER, branch="HQ")
    receipt = app.repository.get(receipt_id(MANAGER, "form-4"))
    assert (receipt.command_name, receipt.aggregate_id, receipt.request_hash) == (
        "register_customer", result.aggregate_id, "digest-a")


def test_a_receipt_recorded_before_digests_were_kept_reads_with_none():
    state = {"command_name": "register_customer", "aggregate_id": uuid.uuid4()}
    CommandReceipt.Accepted.upcast_v1_v2(state)
    assert state["request_hash"] is None


def test_a_receipt_needs_the_client_command_id():
    with pytest.raises(InvalidValue) as refused:
        CommandReceipt.accept(as_(), command_name="register_customer", aggregate_id=uuid.uuid4())
    assert refused.value.field == "command_id"


# ------------------------------------------------------------------ optimistic concurrency


def test_an_expected_version_that_no_longer_matches_is_refused_and_writes_nothing(app):
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 30})
    before = log_size(app)
    with pytest.raises(VersionMismatch) as refused:
        app.record_facts(as_(), customer_id, group="basic", facts={"age": 31}, expected_version=1)
    assert (refused.value.expected, refused.value.actual) == (1, 2)
    assert log_size(app) == before
    assert app.load(Customer, customer_id).facts["basic"] == {"age": 30}


def test_a_matching_expected_version_is_accepted(app):
    customer_id = register(app)
    result = app.record_facts(as_(), customer_id, group="basic", facts={"age": 30}, expected_version=1)
    assert result.version == 2


def test_closing_a_risk_case_checks_the_expected_version_before_writing(app):
    customer_id = register(app)
    case_id = risk_case(app, customer_id, "avoid")
    app.dispose_risk(as_(OFFICER, "risk_officer"), case_id, actions=["checked"], findings="ok")
    stale = app.load(RiskCase, case_id).version - 1
    before = log_size(app)
    with pytest.raises(VersionMismatch):
        app.close_risk(as_(OFFICER, "risk_officer"), case_id, reason="done", expected_version=stale)
    assert log_size(app) == before
    assert app.load(Customer, customer_id).open_risk_cases == [case_id]


def _interleave(monkeypatch, loser: TuohuApplication, winner_writes) -> None:
    """After ``loser`` loads an aggregate, ``winner_writes()`` runs before ``loser`` saves."""
    original_load = loser.load

    def load_then_let_the_other_writer_save(cls, aggregate_id):
        aggregate = original_load(cls, aggregate_id)
        winner_writes()
        return aggregate

    monkeypatch.setattr(loser, "load", load_then_let_the_other_writer_save)


def test_the_second_of_two_writers_that_loaded_the_same_customer_gets_a_concurrent_update(open_app, monkeypatch):
    first, second = open_app(), open_app()
    customer_id = register(first)
    before = log_size(first)
    _interleave(monkeypatch, second,
                lambda: first.record_facts(as_(), customer_id, group="basic", facts={"age": 30}))
    with pytest.raises(ConcurrentUpdate):
        second.record_facts(as_(), customer_id, group="basic", facts={"age": 99})
    assert log_size(first) == before + 1
    assert open_app().load(Customer, customer_id).facts["basic"] == {"age": 30}


def test_a_concurrent_update_leaves_its_command_id_free_for_a_retry(open_app, monkeypatch):
    first, second = open_app(), open_app()
    customer_id = register(first)
    _interleave(monkeypatch, second,
                lambda: first.record_facts(as_(), customer_id, group="basic", facts={"age": 30}))
    retry_ctx = as_(command_id="client-cmd-8")
    with pytest.raises(ConcurrentUpdate):
        second.record_facts(retry_ctx, customer_id, group="needs", facts={"wants": "loan"})
    monkeypatch.undo()
    result = second.record_facts(retry_ctx, customer_id, group="needs", facts={"wants": "loan"})
    assert result.replayed is False
    assert second.load(Customer, customer_id).facts["needs"] == {"wants": "loan"}


# ------------------------------------------------------------------ not found


def test_an_unknown_customer_id_is_not_found(app):
    with pytest.raises(NotFound):
        app.record_facts(as_(), uuid.uuid4(), group="basic", facts={"age": 30})


def test_the_id_of_another_kind_of_aggregate_is_not_found(app):
    customer_id = register(app)
    proposal_id = app.draft_proposal(as_(), customer_id=customer_id, products=["payroll"], pricing_terms={},
                                     rights_and_obligations="terms").aggregate_id
    before = log_size(app)
    with pytest.raises(NotFound):
        app.record_facts(as_(), proposal_id, group="basic", facts={"age": 30})
    with pytest.raises(NotFound):
        app.submit_proposal(as_(), customer_id)
    assert log_size(app) == before


def test_a_visit_cannot_be_planned_for_an_unknown_customer(app):
    with pytest.raises(NotFound):
        app.plan_visit(as_(), customer_id=uuid.uuid4(), purpose="payroll", staff=[MANAGER], method="phone",
                       kind="acquisition", scheduled_at=datetime(2024, 3, 5, 10, tzinfo=BEIJING))
    assert log_size(app) == 0


def test_a_proposal_cannot_be_drafted_for_an_unknown_customer(app):
    with pytest.raises(NotFound):
        app.draft_proposal(as_(), customer_id=uuid.uuid4(), products=["payroll"], pricing_terms={},
                           rights_and_obligations="terms")
    assert log_size(app) == 0


def test_a_contract_cannot_be_drafted_from_an_unknown_proposal(app):
    with pytest.raises(NotFound):
        app.draft_contract(as_(), proposal_id=uuid.uuid4())


def test_a_risk_cannot_be_identified_about_an_unknown_contract(app):
    register(app)
    before = log_size(app)
    with pytest.raises(NotFound):
        app.identify_risk(as_(OFFICER, "risk_officer"), subject_type="contract", subject_id=uuid.uuid4(),
                          category="operational", description="clause unenforceable")
    assert log_size(app) == before


# ------------------------------------------------------------------ risk links and the avoid rule (§4)


def test_identifying_a_risk_links_the_case_to_the_customer(app):
    customer_id = register(app)
    case_id = app.identify_risk(as_(OFFICER, "risk_officer"), subject_type="customer", subject_id=customer_id,
                                category="credit", description="overdue").aggregate_id
    case = app.load(RiskCase, case_id)
    assert (case.customer_id, case.status) == (customer_id, "identified")
    assert app.load(Customer, customer_id).open_risk_cases == [case_id]


def test_a_risk_about_a_contract_is_linked_to_the_contracts_customer(app):
    customer_id = register(app)
    contract_id = approved_contract(app, customer_id)
    case_id = app.identify_risk(as_(OFFICER, "risk_officer"), subject_type="contract", subject_id=contract_id,
                                category="operational", description="clause unenforceable").aggregate_id
    case = app.load(RiskCase, case_id)
    assert (case.subject_type, case.subject_id, case.customer_id) == ("contract", contract_id, customer_id)
    assert app.load(Customer, customer_id).open_risk_cases == [case_id]


def test_closing_a_risk_unlinks_it_from_the_customer(app):
    customer_id = register(app)
    kept = risk_case(app, customer_id, "reduce")
    closed = risk_case(app, customer_id, "avoid")
    close(app, closed)
    assert app.load(RiskCase, closed).status == "closed"
    assert app.load(Customer, customer_id).open_risk_cases == [kept]


def test_signing_is_blocked_while_the_customer_has_an_open_avoid_case(app):
    customer_id = register(app)
    contract_id = approved_contract(app, customer_id)
    risk_case(app, customer_id, "avoid")
    before = log_size(app)
    with pytest.raises(ContractSigningBlockedByRisk):
        app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang")
    assert log_size(app) == before
    assert app.load(Contract, contract_id).status == "approved"


def test_signing_is_blocked_by_an_avoid_case_raised_about_the_contract_itself(app):
    customer_id = register(app)
    contract_id = approved_contract(app, customer_id)
    risk_case(app, customer_id, "avoid", subject_type="contract", subject_id=contract_id)
    with pytest.raises(ContractSigningBlockedByRisk):
        app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang")


def test_signing_goes_ahead_once_the_avoid_case_is_closed(app):
    customer_id = register(app)
    contract_id = approved_contract(app, customer_id)
    close(app, risk_case(app, customer_id, "avoid"))
    app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang")
    assert app.load(Contract, contract_id).status == "signed"


def test_signing_goes_ahead_with_an_open_reduce_case(app):
    customer_id = register(app)
    contract_id = approved_contract(app, customer_id)
    risk_case(app, customer_id, "reduce")
    app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang")
    assert app.load(Contract, contract_id).status == "signed"


def test_an_avoid_case_of_another_customer_does_not_block_signing(app):
    customer_id, other_id = register(app), register(app)
    contract_id = approved_contract(app, customer_id)
    risk_case(app, other_id, "avoid")
    app.sign_contract(as_(APPROVER, "branch_head"), contract_id, customer_signatory="CFO Huang")
    assert app.load(Contract, contract_id).status == "signed"


# ------------------------------------------------------------------ key customer visits (§2.3)


def _visit(app, customer_id):
    return app.plan_visit(as_(), customer_id=customer_id, purpose="payroll", staff=[MANAGER], method="in_person",
                          kind="acquisition", scheduled_at=datetime(2024, 3, 5, 10, tzinfo=BEIJING)).aggregate_id


def test_a_key_customers_visit_cannot_be_conducted_unprepared_through_the_application(app):
    customer_id = register(app)
    app.mark_key_customer(as_(APPROVER, "branch_head"), customer_id, reason="listed company")
    visit_id = _visit(app, customer_id)
    with pytest.raises(PreparationRequired):
        app.conduct_visit(as_(), visit_id, outcome="improvised")
    assert app.load(Visit, visit_id).status == "planned"


def test_an_ordinary_customers_visit_may_be_conducted_unprepared(app):
    customer_id = register(app)
    visit_id = _visit(app, customer_id)
    app.conduct_visit(as_(), visit_id, outcome="interested")
    assert app.load(Visit, visit_id).status == "conducted"


# ------------------------------------------------------------------ events round-trip through the store


def _histories() -> list:
    """One aggregate of each kind with a varied history, built in memory (events still pending)."""
    at = Context(actor_id=MANAGER, actor_role="customer_manager", occurred_at=datetime(2024, 3, 1, 17, tzinfo=BEIJING),
                 channel="import", correlation_id="run-2024-03-01", causation_id="file:bank-full.csv#17",
                 command_id="import-17")
    checker = Context(actor_id=APPROVER, actor_role="branch_head")
    customer = Customer.register(at, kind="retail", acquisition_channel="branch", source_detail="counter",
                                 segment="students", manager_id=MANAGER, branch="HQ", display_name="林梅")
    customer.record_facts(at, group="basic", facts={"age": 23, "birth_date": date(2001, 5, 17), "job": "student"})
    customer.record_facts(at, group="financial", facts={"balance": Decimal("-40.25"), "housing_loan": False})
    customer.record_credit_standing(at, source="bureau", result="no_default", rating=None)
    customer.record_screening(at, model_name="retail-scorecard", model_version="1.0",
                              inputs={"age": 23, "balance": Decimal("-40.25")}, score=15,
                              contributions={"base": 50, "balance": -20}, outcome="decline")
    customer.review(checker, decision="qualified", reason="guarantor provided")
    customer.apply_for_account(at, account_type="current", documents=["id card"])
    customer.review_documents(checker, accepted=True)
    customer.open_account(at, account_number="6222 0001")
    customer.report_business_figures(at, period="2024-03", currency="CNY", deposit_balance=Decimal("100.10"),
                                     loans_disbursed=Decimal("0"), fee_income=Decimal("0.01"))
    case = RiskCase.identify(at, subject_type="customer", subject_id=customer.id, customer_id=customer.id,
                             category="credit", description="negative balance")
    case.assess(at, indicator_scores={"balance": 55, "overdue": 10})
    case.decide_response(at, response="reduce", measures=["limit overdraft"], reason="medium")
    case.record_reading(at, indicator="balance", value=Decimal("-40.25"), threshold=Decimal("0"), direction="below")
    customer.link_risk_case(at, risk_case_id=case.id)
    visit = Visit.plan(at, customer_id=customer.id, purpose="welcome", staff=[MANAGER], method="video",
                       kind="follow_up", scheduled_at=datetime(2024, 3, 5, 10, tzinfo=BEIJING))
    visit.conduct(at, outcome="happy", duration_seconds=900)
    proposal = Proposal.draft(at, customer_id=customer.id, products=["card"], pricing_terms={"annual_fee": "0"},
                              rights_and_obligations="standard")
    proposal.submit(at)
    proposal.approve(checker)
    proposal.present(at)
    proposal.accept(at)
    contract = Contract.draft_from(at, proposal)
    contract.review_clauses(checker, findings=[{"clause": "2", "finding": "typo"}])
    return [customer, case, visit, proposal, contract]


def test_events_read_back_from_the_store_equal_the_events_recorded(open_app):
    writer = open_app()
    aggregates = _histories()
    recorded = {a.id: list(a.pending_events) for a in aggregates}
    writer.save(*aggregates)
    reader = open_app()
    for aggregate_id, events in recorded.items():
        assert list(reader.events.get(aggregate_id)) == events


def test_an_aggregate_reloaded_by_a_fresh_application_has_the_same_state(open_app):
    writer = open_app()
    aggregates = _histories()
    writer.save(*aggregates)
    reader = open_app()
    for aggregate in aggregates:
        reloaded = reader.repository.get(aggregate.id)
        assert type(reloaded) is type(aggregate)
        assert vars(reloaded) == vars(aggregate)


def test_dates_decimals_and_utc_times_keep_their_types_through_the_store(open_app):
    writer = open_app()
    customer = _histories()[0]
    writer.save(customer)
    reloaded = open_app().load(Customer, customer.id)
    assert reloaded.facts["basic"]["birth_date"] == date(2001, 5, 17)
    assert reloaded.facts["financial"]["balance"] == Decimal("-40.25")
    assert isinstance(reloaded.business_figures["2024-03"]["fee_income"], Decimal)
    [registered, *_] = open_app().events.get(customer.id)
    assert registered.occurred_at == datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    assert registered.occurred_at.utcoffset() == timedelta(0)
    assert (registered.channel, registered.correlation_id, registered.causation_id, registered.command_id) == (
        "import", "run-2024-03-01", "file:bank-full.csv#17", "import-17")

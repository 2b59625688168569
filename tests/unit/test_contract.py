"""Contract: drafted from an accepted proposal, clauses reviewed, approved and signed by others (measures §2.4 step 3, §4)."""

from __future__ import annotations

import uuid

import pytest

from domain.base import IllegalTransition, InvalidValue, MakerCheckerViolation, ReasonRequired
from domain.contract import (
    ClausesNotReviewed,
    Contract,
    ContractApproverIsDrafter,
    ContractSigningBlockedByRisk,
    OpenClauseFindings,
    ProposalNotAccepted,
    SignatoryIsDrafter,
)

DRAFTER = "mgr-li"
APPROVER = "head-zhao"
LEGAL = "legal-chen"
SIGNATORY = "head-zhao"

TWO_FINDINGS = [
    {"clause": "4.2", "finding": "penalty rate above the legal cap"},
    {"clause": "9.1", "finding": "jurisdiction clause missing"},
]


# ------------------------------------------------------------------ draft from an accepted proposal


def test_a_contract_is_drafted_from_the_accepted_revision_of_a_proposal(given, ctx):
    customer_id = uuid.uuid4()
    proposal = given.presented_proposal(customer_id)
    proposal.revise(ctx(), reason="customer countered", products=["payroll"], pricing_terms={"fee": "0.40"},
                    rights_and_obligations="salaries on the 5th")
    proposal.submit(ctx())
    proposal.approve(ctx(APPROVER, "branch_head"))
    proposal.present(ctx())
    proposal.accept(ctx())
    contract = Contract.draft_from(ctx(DRAFTER), proposal)
    [event] = contract.collect_events()
    assert isinstance(event, Contract.Drafted)
    assert (event.proposal_id, event.proposal_revision, event.customer_id) == (proposal.id, 2, customer_id)
    assert (event.products, event.pricing_terms, event.rights_and_obligations) == (
        ["payroll"], {"fee": "0.40"}, "salaries on the 5th")
    assert contract.status == "drafted"
    assert contract.drafter_id == DRAFTER


def test_a_contract_keeps_a_given_id(given, ctx):
    wanted = uuid.uuid4()
    assert Contract.draft_from(ctx(), given.accepted_proposal(), contract_id=wanted).id == wanted


@pytest.mark.parametrize("status", ["draft", "submitted", "approved", "returned", "presented", "declined", "withdrawn"])
def test_a_contract_cannot_be_drafted_from_a_proposal_the_customer_has_not_accepted(given, ctx, status):
    proposal = given.proposal_in(status)
    with pytest.raises(ProposalNotAccepted):
        Contract.draft_from(ctx(DRAFTER), proposal)


# ------------------------------------------------------------------ clause review


def test_a_clean_clause_review_puts_the_contract_under_review_with_no_findings(given, ctx):
    contract = given.drafted_contract()
    contract.review_clauses(ctx(LEGAL, "legal"), findings=[])
    [event] = contract.collect_events()
    assert isinstance(event, Contract.ClausesReviewed)
    assert event.findings == []
    assert contract.status == "under_review"
    assert contract.open_findings == []


def test_clause_findings_are_numbered_from_one_and_open(given, ctx):
    contract = given.drafted_contract()
    contract.review_clauses(ctx(LEGAL, "legal"), findings=TWO_FINDINGS)
    [event] = contract.collect_events()
    assert event.findings == TWO_FINDINGS
    assert contract.open_findings == [1, 2]


def test_a_second_clause_review_numbers_its_findings_after_the_first(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    contract.review_clauses(ctx(LEGAL, "legal"), findings=[{"clause": "11", "finding": "no data protection clause"}])
    assert contract.open_findings == [1, 2, 3]
    assert contract.findings[2] == {"clause": "11", "finding": "no data protection clause", "resolution": None}


@pytest.mark.parametrize(
    ("findings", "field"),
    [(["penalty too high"], "findings[0]"),
     ([{"clause": "", "finding": "x"}], "findings[0].clause"),
     ([{"clause": "1", "finding": "ok"}, {"clause": "2"}], "findings[1].finding")],
)
def test_a_clause_finding_needs_its_clause_and_finding(given, ctx, findings, field):
    contract = given.drafted_contract()
    with pytest.raises(InvalidValue) as refused:
        contract.review_clauses(ctx(LEGAL, "legal"), findings=findings)
    assert refused.value.field == field


def test_an_approved_contract_cannot_be_clause_reviewed_again(given, ctx):
    contract = given.approved_contract()
    with pytest.raises(IllegalTransition):
        contract.review_clauses(ctx(LEGAL, "legal"), findings=[])


def test_resolving_a_finding_closes_only_that_finding(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=2, resolution="clause 9.1 added: Shenzhen courts")
    [event] = contract.collect_events()
    assert isinstance(event, Contract.FindingResolved)
    assert (event.finding_number, event.resolution) == (2, "clause 9.1 added: Shenzhen courts")
    assert contract.open_findings == [1]


@pytest.mark.parametrize("number", [0, 3])
def test_resolving_needs_the_number_of_an_existing_finding(given, ctx, number):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    with pytest.raises(InvalidValue) as refused:
        contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=number, resolution="done")
    assert refused.value.field == "finding_number"


def test_a_resolved_finding_cannot_be_resolved_again(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution="rate capped")
    with pytest.raises(InvalidValue) as refused:
        contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution="again")
    assert refused.value.field == "finding_number"


def test_resolving_needs_the_resolution(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    with pytest.raises(InvalidValue) as refused:
        contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution=" ")
    assert refused.value.field == "resolution"


def test_a_finding_cannot_be_resolved_before_a_clause_review(given, ctx):
    contract = given.drafted_contract()
    with pytest.raises(IllegalTransition):
        contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution="pre-emptive")


# ------------------------------------------------------------------ approve


def test_a_reviewed_contract_with_no_open_finding_is_approved_by_someone_else(given, ctx):
    contract = given.contract_under_review(findings=[], drafter=DRAFTER)
    contract.approve(ctx(APPROVER, "branch_head"), reason="clauses clean")
    [event] = contract.collect_events()
    assert isinstance(event, Contract.Approved)
    assert event.reason == "clauses clean"
    assert contract.status == "approved"
    assert contract.approver_id == APPROVER


def test_a_contract_is_approved_once_every_finding_is_resolved(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution="rate capped")
    contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=2, resolution="jurisdiction added")
    contract.collect_events()
    contract.approve(ctx(APPROVER, "branch_head"))
    assert contract.status == "approved"


def test_a_contract_cannot_be_approved_before_its_clauses_are_reviewed(given, ctx):
    contract = given.drafted_contract()
    with pytest.raises(ClausesNotReviewed):
        contract.approve(ctx(APPROVER, "branch_head"))
    assert contract.collect_events() == []


def test_a_contract_cannot_be_approved_with_open_clause_findings(given, ctx):
    contract = given.contract_under_review(findings=TWO_FINDINGS)
    contract.resolve_finding(ctx(LEGAL, "legal"), finding_number=1, resolution="rate capped")
    contract.collect_events()
    with pytest.raises(OpenClauseFindings):
        contract.approve(ctx(APPROVER, "branch_head"))
    assert contract.collect_events() == []


def test_contract_cannot_be_approved_by_its_drafter(given, ctx):
    contract = given.contract_under_review(findings=[], drafter=DRAFTER)
    with pytest.raises(ContractApproverIsDrafter) as refused:
        contract.approve(ctx(DRAFTER, "branch_head"))
    assert isinstance(refused.value, MakerCheckerViolation)
    assert contract.status == "under_review"


def test_an_approved_contract_cannot_be_approved_again(given, ctx):
    contract = given.approved_contract()
    with pytest.raises(IllegalTransition):
        contract.approve(ctx(APPROVER, "branch_head"))


# ------------------------------------------------------------------ sign (and the avoid rule of §4)


def test_an_approved_contract_is_signed_by_the_bank_and_the_customer(given, ctx):
    contract = given.approved_contract(drafter=DRAFTER)
    contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=[])
    [event] = contract.collect_events()
    assert isinstance(event, Contract.Signed)
    assert event.customer_signatory == "CFO Huang"
    assert contract.status == "signed"
    assert contract.signatories == {"bank": SIGNATORY, "customer": "CFO Huang"}


def test_contract_cannot_be_signed_by_its_drafter(given, ctx):
    contract = given.approved_contract(drafter=DRAFTER)
    with pytest.raises(SignatoryIsDrafter) as refused:
        contract.sign(ctx(DRAFTER, "customer_manager"), customer_signatory="CFO Huang", customer_risk_cases=[])
    assert isinstance(refused.value, MakerCheckerViolation)
    assert contract.collect_events() == []


def test_a_contract_under_review_cannot_be_signed(given, ctx):
    contract = given.contract_under_review()
    with pytest.raises(IllegalTransition):
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=[])


def test_signing_needs_the_customers_signatory(given, ctx):
    contract = given.approved_contract()
    with pytest.raises(InvalidValue) as refused:
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="", customer_risk_cases=[])
    assert refused.value.field == "customer_signatory"


def test_an_open_risk_case_with_response_avoid_blocks_signing(given, ctx):
    customer_id = uuid.uuid4()
    contract = given.approved_contract(customer_id)
    avoid = given.risk_with_response("avoid", customer_id)
    with pytest.raises(ContractSigningBlockedByRisk) as refused:
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=[avoid])
    assert str(avoid.id) in refused.value.detail
    assert contract.collect_events() == []
    assert contract.status == "approved"


def test_a_disposed_but_not_closed_avoid_case_still_blocks_signing(given, ctx):
    contract = given.approved_contract()
    with pytest.raises(ContractSigningBlockedByRisk):
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang",
                      customer_risk_cases=[given.disposed_risk("avoid")])


def test_a_closed_avoid_case_does_not_block_signing(given, ctx):
    contract = given.approved_contract()
    contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang",
                  customer_risk_cases=[given.closed_risk("avoid")])
    assert contract.status == "signed"


@pytest.mark.parametrize("response", ["reduce", "transfer", "accept"])
def test_an_open_case_with_another_response_does_not_block_signing(given, ctx, response):
    contract = given.approved_contract()
    contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang",
                  customer_risk_cases=[given.risk_with_response(response)])
    assert contract.status == "signed"


def test_one_avoid_case_among_others_blocks_signing(given, ctx):
    contract = given.approved_contract()
    cases = [given.risk_with_response("reduce"), given.closed_risk("avoid"), given.risk_with_response("avoid")]
    with pytest.raises(ContractSigningBlockedByRisk):
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=cases)


# ------------------------------------------------------------------ terminate


def test_a_signed_contract_is_terminated_with_the_reason(given, ctx):
    contract = given.signed_contract()
    contract.terminate(ctx(APPROVER, "branch_head"), reason="customer moved abroad")
    [event] = contract.collect_events()
    assert isinstance(event, Contract.Terminated)
    assert event.reason == "customer moved abroad"
    assert contract.status == "terminated"


def test_terminating_needs_a_reason(given, ctx):
    contract = given.signed_contract()
    with pytest.raises(ReasonRequired):
        contract.terminate(ctx(APPROVER, "branch_head"), reason="")


def test_an_unsigned_contract_cannot_be_terminated(given, ctx):
    contract = given.approved_contract()
    with pytest.raises(IllegalTransition):
        contract.terminate(ctx(APPROVER, "branch_head"), reason="never mind")


def test_a_terminated_contract_cannot_be_signed_again(given, ctx):
    contract = given.signed_contract()
    contract.terminate(ctx(APPROVER, "branch_head"), reason="customer moved abroad")
    with pytest.raises(IllegalTransition):
        contract.sign(ctx(SIGNATORY, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=[])


# ------------------------------------------------------------------ evidence on every event


def test_every_contract_event_carries_the_evidence_of_its_command(given, ctx, evidence_ctx, carries_evidence, now):
    proposal = given.accepted_proposal()
    checker = ctx(APPROVER, "branch_head", channel=evidence_ctx.channel, correlation_id=evidence_ctx.correlation_id,
                  causation_id=evidence_ctx.causation_id, command_id=evidence_ctx.command_id)
    before = now()
    contract = Contract.draft_from(evidence_ctx, proposal)
    contract.review_clauses(evidence_ctx, findings=TWO_FINDINGS[:1])
    contract.resolve_finding(evidence_ctx, finding_number=1, resolution="fixed")
    contract.approve(checker, reason="clean")
    contract.sign(checker, customer_signatory="CFO Huang", customer_risk_cases=[])
    contract.terminate(evidence_ctx, reason="ended")
    events = contract.collect_events()
    after = now()
    assert len(events) == 6
    for event in events:
        carries_evidence(event, checker if event.actor_id == APPROVER else evidence_ctx,
                         recorded_between=(before, after))

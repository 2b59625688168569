"""Proposal: drafted, approved by another person, presented, negotiated with every revision kept (measures §2.4)."""

from __future__ import annotations

import uuid

import pytest

from domain.base import IllegalTransition, InvalidValue, MakerCheckerViolation, ReasonRequired
from domain.proposal import ApproverIsDrafter, Proposal

DRAFTER = "mgr-li"
APPROVER = "head-zhao"

OPEN_STATES = ("draft", "submitted", "approved", "returned", "presented")
FINAL_STATES = ("accepted", "declined", "withdrawn")


def content(n: int) -> dict:
    """The content of a revision, distinguishable by ``n``."""
    return dict(products=["payroll", f"card-{n}"], pricing_terms={"fee_per_transfer": f"0.{n}0"},
                rights_and_obligations=f"terms version {n}")


# ------------------------------------------------------------------ draft (§2.4 step 1)


def test_drafting_a_proposal_makes_revision_one_by_the_drafter(ctx):
    customer_id = uuid.uuid4()
    proposal = Proposal.draft(ctx(DRAFTER), customer_id=customer_id, **content(1))
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Drafted)
    assert proposal.status == "draft"
    assert proposal.drafter_id == DRAFTER
    assert proposal.customer_id == customer_id
    assert proposal.revisions == [{"revision": 1, **content(1)}]
    assert proposal.revision == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("products", []), ("products", ["payroll", ""]), ("pricing_terms", ["0.5"]), ("rights_and_obligations", " ")],
)
def test_drafting_refuses_bad_content_and_names_the_field(ctx, field, value):
    fields = content(1)
    fields[field] = value
    with pytest.raises(InvalidValue) as refused:
        Proposal.draft(ctx(DRAFTER), customer_id=uuid.uuid4(), **fields)
    assert refused.value.field == field


# ------------------------------------------------------------------ submit and approve (maker-checker)


def test_submitting_a_draft_records_the_revision_submitted(given, ctx):
    proposal = given.drafted_proposal(drafter=DRAFTER)
    proposal.submit(ctx(DRAFTER))
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Submitted)
    assert event.revision == 1
    assert proposal.status == "submitted"


def test_a_submitted_proposal_cannot_be_submitted_again(given, ctx):
    proposal = given.submitted_proposal()
    with pytest.raises(IllegalTransition) as refused:
        proposal.submit(ctx(DRAFTER))
    assert refused.value.state == "submitted"


def test_someone_other_than_the_drafter_approves_a_submitted_proposal(given, ctx):
    proposal = given.submitted_proposal(drafter=DRAFTER)
    proposal.approve(ctx(APPROVER, "branch_head"), reason="within pricing policy")
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Approved)
    assert (event.revision, event.reason) == (1, "within pricing policy")
    assert proposal.status == "approved"
    assert proposal.approver_id == APPROVER


def test_proposal_cannot_be_approved_by_its_drafter(given, ctx):
    proposal = given.submitted_proposal(drafter=DRAFTER)
    with pytest.raises(ApproverIsDrafter) as refused:
        proposal.approve(ctx(DRAFTER, "branch_head"))
    assert isinstance(refused.value, MakerCheckerViolation)
    assert proposal.collect_events() == []
    assert proposal.status == "submitted"


def test_a_draft_cannot_be_approved_before_it_is_submitted(given, ctx):
    proposal = given.drafted_proposal()
    with pytest.raises(IllegalTransition):
        proposal.approve(ctx(APPROVER, "branch_head"))


def test_someone_other_than_the_drafter_returns_a_proposal_with_the_reason(given, ctx):
    proposal = given.submitted_proposal(drafter=DRAFTER)
    proposal.return_for_revision(ctx(APPROVER, "branch_head"), reason="fee below policy floor")
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Returned)
    assert (event.revision, event.reason) == (1, "fee below policy floor")
    assert proposal.status == "returned"


def test_proposal_cannot_be_returned_by_its_drafter(given, ctx):
    proposal = given.submitted_proposal(drafter=DRAFTER)
    with pytest.raises(ApproverIsDrafter):
        proposal.return_for_revision(ctx(DRAFTER), reason="I changed my mind")


def test_returning_a_proposal_needs_a_reason(given, ctx):
    proposal = given.submitted_proposal()
    with pytest.raises(ReasonRequired):
        proposal.return_for_revision(ctx(APPROVER, "branch_head"), reason="")


def test_an_approved_proposal_cannot_be_returned(given, ctx):
    proposal = given.approved_proposal()
    with pytest.raises(IllegalTransition):
        proposal.return_for_revision(ctx(APPROVER, "branch_head"), reason="too late")


# ------------------------------------------------------------------ revisions (§2.4 step 2)


def test_revising_a_returned_proposal_adds_revision_two_and_makes_it_a_draft(given, ctx):
    proposal = given.returned_proposal()
    proposal.revise(ctx(DRAFTER), reason="fee raised to policy floor", **content(2))
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Revised)
    assert (event.revision, event.reason) == (2, "fee raised to policy floor")
    assert proposal.status == "draft"
    assert proposal.current == {"revision": 2, **content(2)}


def test_proposals_keep_every_revision_numbered(ctx):
    proposal = Proposal.draft(ctx(DRAFTER), customer_id=uuid.uuid4(), **content(1))
    proposal.revise(ctx(DRAFTER), reason="customer asked for a card", **content(2))
    proposal.revise(ctx(DRAFTER), reason="lower fee", **content(3))
    assert proposal.revisions == [{"revision": n, **content(n)} for n in (1, 2, 3)]
    assert proposal.revision == 3


def test_a_presented_proposal_may_be_revised_in_negotiation(given, ctx):
    proposal = given.presented_proposal()
    proposal.revise(ctx(DRAFTER), reason="customer countered on fees", **content(2))
    assert proposal.status == "draft"
    assert [r["revision"] for r in proposal.revisions] == [1, 2]


def test_a_revision_is_submitted_and_approved_under_its_own_number(given, ctx):
    proposal = given.returned_proposal()
    proposal.revise(ctx(DRAFTER), reason="fixed", **content(2))
    proposal.submit(ctx(DRAFTER))
    proposal.approve(ctx(APPROVER, "branch_head"))
    _, submitted, approved = proposal.collect_events()
    assert (submitted.revision, approved.revision) == (2, 2)


def test_revising_needs_a_reason(given, ctx):
    proposal = given.returned_proposal()
    with pytest.raises(ReasonRequired):
        proposal.revise(ctx(DRAFTER), reason=None, **content(2))
    assert proposal.revision == 1


@pytest.mark.parametrize("status", ["submitted", "approved", *FINAL_STATES])
def test_a_proposal_cannot_be_revised_while_awaiting_approval_or_once_final(given, ctx, status):
    proposal = given.proposal_in(status)
    with pytest.raises(IllegalTransition) as refused:
        proposal.revise(ctx(DRAFTER), reason="late change", **content(2))
    assert refused.value.state == status


def test_a_revision_refuses_bad_content(given, ctx):
    proposal = given.returned_proposal()
    with pytest.raises(InvalidValue) as refused:
        proposal.revise(ctx(DRAFTER), reason="r", **{**content(2), "products": []})
    assert refused.value.field == "products"


# ------------------------------------------------------------------ present and the customer's answer


def test_an_approved_proposal_is_presented_to_the_customer(given, ctx):
    proposal = given.approved_proposal()
    proposal.present(ctx(DRAFTER))
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Presented)
    assert event.revision == 1
    assert proposal.status == "presented"


def test_a_submitted_proposal_cannot_be_presented_before_approval(given, ctx):
    proposal = given.submitted_proposal()
    with pytest.raises(IllegalTransition):
        proposal.present(ctx(DRAFTER))


def test_the_customer_accepts_the_presented_revision(given, ctx):
    proposal = given.presented_proposal()
    proposal.accept(ctx(DRAFTER), reason="term sheet signed")
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.AcceptedByCustomer)
    assert (event.revision, event.reason) == (1, "term sheet signed")
    assert proposal.status == "accepted"


def test_a_proposal_not_yet_presented_cannot_be_accepted(given, ctx):
    proposal = given.approved_proposal()
    with pytest.raises(IllegalTransition):
        proposal.accept(ctx(DRAFTER))


def test_the_customer_declines_with_the_reason(given, ctx):
    proposal = given.presented_proposal()
    proposal.decline(ctx(DRAFTER), reason="competitor cheaper")
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.DeclinedByCustomer)
    assert event.reason == "competitor cheaper"
    assert proposal.status == "declined"


def test_a_declined_proposal_needs_the_reason(given, ctx):
    proposal = given.presented_proposal()
    with pytest.raises(ReasonRequired):
        proposal.decline(ctx(DRAFTER), reason="  ")


def test_a_proposal_not_yet_presented_cannot_be_declined(given, ctx):
    proposal = given.drafted_proposal()
    with pytest.raises(IllegalTransition):
        proposal.decline(ctx(DRAFTER), reason="no")


# ------------------------------------------------------------------ withdraw


@pytest.mark.parametrize("status", OPEN_STATES)
def test_an_open_proposal_may_be_withdrawn_with_the_reason(given, ctx, status):
    proposal = given.proposal_in(status)
    proposal.withdraw(ctx(DRAFTER), reason="customer merged with an existing client")
    [event] = proposal.collect_events()
    assert isinstance(event, Proposal.Withdrawn)
    assert event.reason == "customer merged with an existing client"
    assert proposal.status == "withdrawn"


@pytest.mark.parametrize("status", FINAL_STATES)
def test_a_final_proposal_cannot_be_withdrawn(given, ctx, status):
    proposal = given.proposal_in(status)
    with pytest.raises(IllegalTransition):
        proposal.withdraw(ctx(DRAFTER), reason="tidy up")


def test_withdrawing_needs_a_reason(given, ctx):
    proposal = given.drafted_proposal()
    with pytest.raises(ReasonRequired):
        proposal.withdraw(ctx(DRAFTER), reason=None)


# ------------------------------------------------------------------ evidence on every event


def test_every_proposal_event_carries_the_evidence_of_its_command(ctx, evidence_ctx, carries_evidence, now):
    before = now()
    proposal = Proposal.draft(evidence_ctx, customer_id=uuid.uuid4(), **content(1))
    # The approver must differ from the drafter, so approval and return run under a second context
    # that shares every other evidence field.
    checker = ctx(APPROVER, "branch_head", channel=evidence_ctx.channel, correlation_id=evidence_ctx.correlation_id,
                  causation_id=evidence_ctx.causation_id, command_id=evidence_ctx.command_id)
    proposal.submit(evidence_ctx)
    proposal.return_for_revision(checker, reason="fee")
    proposal.revise(evidence_ctx, reason="fee fixed", **content(2))
    proposal.submit(evidence_ctx)
    proposal.approve(checker, reason="ok")
    proposal.present(evidence_ctx)
    proposal.accept(evidence_ctx, reason="signed")
    other = Proposal.draft(evidence_ctx, customer_id=uuid.uuid4(), **content(1))
    other.withdraw(evidence_ctx, reason="not needed")
    third = Proposal.draft(evidence_ctx, customer_id=uuid.uuid4(), **content(1))
    third.submit(evidence_ctx)
    third.approve(checker)
    third.present(evidence_ctx)
    third.decline(evidence_ctx, reason="too dear")
    after = now()
    for event in proposal.collect_events() + other.collect_events() + third.collect_events():
        carries_evidence(event, checker if event.actor_id == APPROVER else evidence_ctx,
                         recorded_between=(before, after))

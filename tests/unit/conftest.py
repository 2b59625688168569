"""Shared givens for tuohu's unit tests.

The tests read "given events / when command / then events or error": a
``given`` builder drives an aggregate through earlier commands and then drops
their pending events, so what a test collects afterwards is only what its own
command caused (``aggregate.collect_events()``).
"""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from domain.base import Context  # noqa: E402
from domain.contract import Contract  # noqa: E402
from domain.customer import Customer  # noqa: E402
from domain.proposal import Proposal  # noqa: E402
from domain.risk import RiskCase  # noqa: E402
from domain.visit import Visit  # noqa: E402

# A business time in the past, so that occurred_at and recorded_at differ.
BUSINESS_TIME = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)

MANAGER = "mgr-li"
REVIEWER = "rev-wang"
DRAFTER = "mgr-li"
APPROVER = "head-zhao"
LEGAL = "legal-chen"
RISK_OFFICER = "risk-sun"
OPERATIONS = "ops-zhou"


def make_ctx(actor_id: str = MANAGER, actor_role: str = "customer_manager", **kwargs: Any) -> Context:
    """A command context at the fixed business time unless told otherwise."""
    kwargs.setdefault("occurred_at", BUSINESS_TIME)
    return Context(actor_id=actor_id, actor_role=actor_role, **kwargs)


def settled(aggregate: Any) -> Any:
    """Drop the pending events of the givens, keep the state they produced."""
    aggregate.collect_events()
    return aggregate


class Given:
    """Aggregates in a named state, built through their own commands."""

    # ------------------------------------------------------------- customers

    def registered_customer(self, manager_id: str = MANAGER, kind: str = "retail") -> Customer:
        customer = Customer.register(
            make_ctx(manager_id), kind=kind, acquisition_channel="branch", source_detail="Counter form 17",
            segment="young professionals", manager_id=manager_id, branch="Shenzhen Futian", display_name="Lin Mei",
        )
        return settled(customer)

    def screened_customer(self, manager_id: str = MANAGER) -> Customer:
        customer = self.registered_customer(manager_id)
        customer.record_screening(
            make_ctx(manager_id, "system"), model_name="retail-scorecard", model_version="1.0",
            inputs={"age": 35}, score=60, contributions={"base": 50, "age": 10}, outcome="refer",
        )
        return settled(customer)

    def qualified_customer(self, manager_id: str = MANAGER) -> Customer:
        customer = self.screened_customer(manager_id)
        customer.review(make_ctx(REVIEWER, "reviewer"), decision="qualified", reason="facts verified")
        return settled(customer)

    def rejected_customer(self) -> Customer:
        customer = self.screened_customer()
        customer.review(make_ctx(REVIEWER, "reviewer"), decision="rejected", reason="income not verifiable")
        return settled(customer)

    def customer_applied_for_account(self) -> Customer:
        customer = self.qualified_customer()
        customer.apply_for_account(make_ctx(OPERATIONS, "operations"), account_type="current",
                                   documents=["id card", "proof of address"])
        return settled(customer)

    def customer_with_documents_returned(self) -> Customer:
        customer = self.customer_applied_for_account()
        customer.review_documents(make_ctx(OPERATIONS, "operations"), accepted=False,
                                  return_reasons=["proof of address is older than three months"])
        return settled(customer)

    def customer_with_documents_accepted(self) -> Customer:
        customer = self.customer_applied_for_account()
        customer.review_documents(make_ctx(OPERATIONS, "operations"), accepted=True)
        return settled(customer)

    def customer_with_account(self) -> Customer:
        customer = self.customer_with_documents_accepted()
        customer.open_account(make_ctx(OPERATIONS, "operations"), account_number="6222 0001 0002")
        return settled(customer)

    def key_customer(self) -> Customer:
        customer = self.registered_customer()
        customer.mark_key_customer(make_ctx(APPROVER, "branch_head"), reason="group account, high deposits")
        return settled(customer)

    # ------------------------------------------------------------- visits

    def planned_visit(self, customer_id: uuid.UUID | None = None) -> Visit:
        visit = Visit.plan(
            make_ctx(), customer_id=customer_id or uuid.uuid4(), purpose="introduce payroll services",
            scheduled_at=datetime(2024, 3, 5, 2, 0, tzinfo=timezone.utc), staff=[MANAGER, "pm-guo"],
            method="in_person", kind="acquisition",
        )
        return settled(visit)

    def prepared_visit(self) -> Visit:
        visit = self.planned_visit()
        visit.prepare(make_ctx(), background="manufacturer, 300 staff", materials=["payroll brochure"],
                      talking_points=["fee waiver for first year"])
        return settled(visit)

    def conducted_visit(self) -> Visit:
        visit = self.planned_visit()
        visit.conduct(make_ctx(), outcome="interested in payroll", needs_learned="payroll for 300 staff",
                      next_steps="send proposal", duration_seconds=3600)
        return settled(visit)

    def cancelled_visit(self) -> Visit:
        visit = self.planned_visit()
        visit.cancel(make_ctx(), reason="customer asked to postpone indefinitely")
        return settled(visit)

    # ------------------------------------------------------------- proposals

    def drafted_proposal(self, customer_id: uuid.UUID | None = None, drafter: str = DRAFTER) -> Proposal:
        proposal = Proposal.draft(
            make_ctx(drafter), customer_id=customer_id or uuid.uuid4(), products=["payroll", "corporate card"],
            pricing_terms={"payroll_fee_per_transfer": "0.50"}, rights_and_obligations="bank pays salaries on the 10th",
        )
        return settled(proposal)

    def submitted_proposal(self, customer_id: uuid.UUID | None = None, drafter: str = DRAFTER) -> Proposal:
        proposal = self.drafted_proposal(customer_id, drafter)
        proposal.submit(make_ctx(drafter))
        return settled(proposal)

    def approved_proposal(self, customer_id: uuid.UUID | None = None) -> Proposal:
        proposal = self.submitted_proposal(customer_id)
        proposal.approve(make_ctx(APPROVER, "branch_head"))
        return settled(proposal)

    def returned_proposal(self) -> Proposal:
        proposal = self.submitted_proposal()
        proposal.return_for_revision(make_ctx(APPROVER, "branch_head"), reason="fee below policy floor")
        return settled(proposal)

    def presented_proposal(self, customer_id: uuid.UUID | None = None) -> Proposal:
        proposal = self.approved_proposal(customer_id)
        proposal.present(make_ctx(DRAFTER))
        return settled(proposal)

    def accepted_proposal(self, customer_id: uuid.UUID | None = None) -> Proposal:
        proposal = self.presented_proposal(customer_id)
        proposal.accept(make_ctx(DRAFTER), reason="customer signed the term sheet")
        return settled(proposal)

    def declined_proposal(self) -> Proposal:
        proposal = self.presented_proposal()
        proposal.decline(make_ctx(DRAFTER), reason="competitor offered lower fees")
        return settled(proposal)

    def withdrawn_proposal(self) -> Proposal:
        proposal = self.drafted_proposal()
        proposal.withdraw(make_ctx(DRAFTER), reason="customer merged with an existing client")
        return settled(proposal)

    def proposal_in(self, status: str) -> Proposal:
        return {
            "draft": self.drafted_proposal, "submitted": self.submitted_proposal,
            "approved": self.approved_proposal, "returned": self.returned_proposal,
            "presented": self.presented_proposal, "accepted": self.accepted_proposal,
            "declined": self.declined_proposal, "withdrawn": self.withdrawn_proposal,
        }[status]()

    # ------------------------------------------------------------- contracts

    def drafted_contract(self, customer_id: uuid.UUID | None = None, drafter: str = DRAFTER) -> Contract:
        contract = Contract.draft_from(make_ctx(drafter), self.accepted_proposal(customer_id))
        return settled(contract)

    def contract_under_review(self, findings: list[dict[str, str]] | None = None, drafter: str = DRAFTER) -> Contract:
        contract = self.drafted_contract(drafter=drafter)
        contract.review_clauses(make_ctx(LEGAL, "legal"), findings=findings or [])
        return settled(contract)

    def approved_contract(self, customer_id: uuid.UUID | None = None, drafter: str = DRAFTER) -> Contract:
        contract = self.drafted_contract(customer_id, drafter)
        contract.review_clauses(make_ctx(LEGAL, "legal"), findings=[])
        contract.approve(make_ctx(APPROVER, "branch_head"))
        return settled(contract)

    def signed_contract(self) -> Contract:
        contract = self.approved_contract()
        contract.sign(make_ctx(APPROVER, "branch_head"), customer_signatory="CFO Huang", customer_risk_cases=[])
        return settled(contract)

    # ------------------------------------------------------------- risk cases

    def identified_risk(self, customer_id: uuid.UUID | None = None) -> RiskCase:
        customer_id = customer_id or uuid.uuid4()
        case = RiskCase.identify(
            make_ctx(RISK_OFFICER, "risk_officer"), subject_type="customer", subject_id=customer_id,
            customer_id=customer_id, category="credit", description="two overdue instalments at another bank",
        )
        return settled(case)

    def assessed_risk(self, scores: dict[str, int], customer_id: uuid.UUID | None = None) -> RiskCase:
        case = self.identified_risk(customer_id)
        case.assess(make_ctx(RISK_OFFICER, "risk_officer"), indicator_scores=scores)
        return settled(case)

    def risk_with_response(self, response: str, customer_id: uuid.UUID | None = None) -> RiskCase:
        # 90 is a high level; 10 is a low one (measures §4 assessment rule).
        scores = {"overdue": 10} if response == "accept" else {"overdue": 90}
        case = self.assessed_risk(scores, customer_id)
        case.decide_response(make_ctx(RISK_OFFICER, "risk_officer"), response=response,
                             measures=["monthly review"], reason="per risk committee")
        return settled(case)

    def disposed_risk(self, response: str = "avoid") -> RiskCase:
        case = self.risk_with_response(response)
        case.dispose(make_ctx(RISK_OFFICER, "risk_officer"), actions=["called the customer"],
                     findings="overdue was a bank error, now cleared")
        return settled(case)

    def closed_risk(self, response: str = "avoid") -> RiskCase:
        case = self.disposed_risk(response)
        case.close(make_ctx(RISK_OFFICER, "risk_officer"), reason="cause removed")
        return settled(case)


@pytest.fixture
def given() -> Given:
    return Given()


@pytest.fixture
def ctx() -> Callable[..., Context]:
    """``ctx(actor_id, actor_role, **context_fields)``."""
    return make_ctx


@pytest.fixture
def evidence_ctx() -> Context:
    """A context with every evidence field set to a recognisable value."""
    return Context(
        actor_id="auditor-trail", actor_role="compliance_auditor", occurred_at=BUSINESS_TIME,
        channel="cli", correlation_id="corr-42", causation_id="cause-7", command_id="cmd-9f",
    )


def assert_carries_evidence(event: Any, ctx: Context, recorded_between: tuple[datetime, datetime]) -> None:
    """The who / when / how of ``ctx`` is on ``event``; recorded_at is the UTC time of recording."""
    assert event.actor_id == ctx.actor_id
    assert event.actor_role == ctx.actor_role
    assert event.occurred_at == ctx.occurred_at
    assert event.occurred_at.utcoffset().total_seconds() == 0
    assert event.recorded_at == event.timestamp
    assert event.recorded_at.utcoffset().total_seconds() == 0
    assert recorded_between[0] <= event.recorded_at <= recorded_between[1]
    assert event.channel == ctx.channel
    assert event.correlation_id == ctx.correlation_id
    assert event.causation_id == ctx.causation_id
    assert event.command_id == ctx.command_id


@pytest.fixture
def carries_evidence() -> Callable[..., None]:
    """``carries_evidence(event, ctx, recorded_between=(before, after))``."""
    return assert_carries_evidence


@pytest.fixture
def now() -> Callable[[], datetime]:
    """The wall clock in UTC, to bracket recorded_at."""
    return lambda: datetime.now(timezone.utc)

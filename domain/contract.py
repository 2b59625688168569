"""Contract: drafted from an agreed proposal, reviewed, approved, signed (measures §2.4 step 3).

Lifecycle::

    drafted -(review clauses)-> under_review -(resolve findings)-> ...
    under_review with no open finding -(approve)-> approved -(sign)-> signed -(terminate)-> terminated

Rules: only an accepted proposal can become a contract; clause findings must all
be resolved before approval; the approver and the bank signatory may not be the
drafter; signing is refused while the customer has an open risk case whose
response is *avoid* (§4: "no business with that customer").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable
from uuid import UUID

from domain.base import (
    Context,
    DomainError,
    IllegalTransition,
    InvalidValue,
    MakerCheckerViolation,
    TuohuAggregate,
    require_reason,
    require_text,
)
from domain.proposal import ACCEPTED as PROPOSAL_ACCEPTED

if TYPE_CHECKING:
    from domain.proposal import Proposal
    from domain.risk import RiskCase

DRAFTED = "drafted"
UNDER_REVIEW = "under_review"
APPROVED = "approved"
SIGNED = "signed"
TERMINATED = "terminated"


class ProposalNotAccepted(DomainError):
    """A contract may only be drafted from a proposal the customer accepted (§2.4 step 3)."""

    code = "proposal_not_accepted"


class OpenClauseFindings(DomainError):
    """Approval was attempted while clause-review findings are unresolved (§2.4 step 3)."""

    code = "open_clause_findings"


class ClausesNotReviewed(DomainError):
    """Approval was attempted before any clause review (§2.4 step 3)."""

    code = "clauses_not_reviewed"


class ContractApproverIsDrafter(MakerCheckerViolation):
    """The drafter tried to approve the contract."""

    code = "contract_approver_is_drafter"


class SignatoryIsDrafter(MakerCheckerViolation):
    """The drafter tried to sign the contract for the bank."""

    code = "contract_signatory_is_drafter"


class ContractSigningBlockedByRisk(DomainError):
    """The customer has an open risk case whose response is *avoid* (§4)."""

    code = "contract_signing_blocked_by_risk"


class Contract(TuohuAggregate):
    """The signed agreement that carries an accepted proposal's terms."""

    TOPIC = "tuohu:Contract"

    class Drafted(TuohuAggregate.Created):
        """Drafted from the accepted revision of a proposal."""

        proposal_id: UUID
        proposal_revision: int
        customer_id: UUID
        products: list[str]
        pricing_terms: dict[str, Any]
        rights_and_obligations: str

        def apply(self, contract: Contract) -> None:
            contract.proposal_id = self.proposal_id
            contract.customer_id = self.customer_id
            contract.products = list(self.products)
            contract.drafter_id = self.actor_id
            contract.status = DRAFTED
            contract.findings = []
            contract.reviewed = False
            contract.signatories = None

    class ClausesReviewed(TuohuAggregate.Event):
        """A clause review with its findings (empty when the clauses are clean)."""

        findings: list[dict[str, str]]

        def apply(self, contract: Contract) -> None:
            for f in self.findings:
                contract.findings.append({"clause": f["clause"], "finding": f["finding"], "resolution": None})
            contract.reviewed = True
            contract.status = UNDER_REVIEW

    class FindingResolved(TuohuAggregate.Event):
        """One clause finding (numbered from 1) resolved, with how."""

        finding_number: int
        resolution: str

        def apply(self, contract: Contract) -> None:
            contract.findings[self.finding_number - 1]["resolution"] = self.resolution

    class Approved(TuohuAggregate.Event):
        """Approved by someone other than the drafter, all findings resolved."""

        def apply(self, contract: Contract) -> None:
            contract.status = APPROVED
            contract.approver_id = self.actor_id

    class Signed(TuohuAggregate.Event):
        """Signed by the bank's signatory (the actor) and the customer's signatory."""

        customer_signatory: str

        def apply(self, contract: Contract) -> None:
            contract.status = SIGNED
            contract.signatories = {"bank": self.actor_id, "customer": self.customer_signatory}

    class Terminated(TuohuAggregate.Event):
        """Terminated, with the reason."""

        def apply(self, contract: Contract) -> None:
            contract.status = TERMINATED

    @property
    def open_findings(self) -> list[int]:
        """Numbers (from 1) of the findings not yet resolved."""
        return [i for i, f in enumerate(self.findings, start=1) if f["resolution"] is None]

    # ------------------------------------------------------------------ commands

    @classmethod
    def draft_from(cls, ctx: Context, proposal: Proposal, *, contract_id: UUID | None = None) -> Contract:
        """Draft from an accepted proposal. Raises :class:`ProposalNotAccepted`."""
        if proposal.status != PROPOSAL_ACCEPTED:
            raise ProposalNotAccepted(
                f"proposal {proposal.id} is {proposal.status}; only an accepted proposal can become a contract"
            )
        current = proposal.current
        return cls._start(
            cls.Drafted, ctx, id=contract_id, proposal_id=proposal.id, proposal_revision=proposal.revision,
            customer_id=proposal.customer_id, products=list(current["products"]),
            pricing_terms=dict(current["pricing_terms"]), rights_and_obligations=current["rights_and_obligations"],
        )

    def review_clauses(self, ctx: Context, *, findings: list[dict[str, str]]) -> None:
        """Record a clause review; each finding is ``{"clause": ..., "finding": ...}``."""
        self._check_status("clause-reviewed", (DRAFTED, UNDER_REVIEW))
        clean = []
        for i, f in enumerate(findings or []):
            if not isinstance(f, dict):
                raise InvalidValue(f"findings[{i}]", "must be an object with clause and finding")
            clean.append({
                "clause": require_text(f.get("clause"), f"findings[{i}].clause"),
                "finding": require_text(f.get("finding"), f"findings[{i}].finding"),
            })
        self._record(self.ClausesReviewed, ctx, findings=clean)

    def resolve_finding(self, ctx: Context, *, finding_number: int, resolution: str) -> None:
        """Resolve one finding (numbered from 1)."""
        self._check_status("have a finding resolved", (UNDER_REVIEW,))
        if isinstance(finding_number, bool) or finding_number not in self.open_findings:
            raise InvalidValue("finding_number", f"no open finding number {finding_number}; open: {self.open_findings}")
        self._record(self.FindingResolved, ctx, finding_number=finding_number,
                     resolution=require_text(resolution, "resolution"))

    def approve(self, ctx: Context, *, reason: str | None = None) -> None:
        """Approve. Raises :class:`ClausesNotReviewed`, :class:`OpenClauseFindings`,
        :class:`ContractApproverIsDrafter`."""
        if self.status == DRAFTED:
            raise ClausesNotReviewed("the clauses must be reviewed before the contract is approved")
        self._check_status("approved", (UNDER_REVIEW,))
        if self.open_findings:
            raise OpenClauseFindings(f"clause findings {self.open_findings} are not resolved")
        if ctx.actor_id == self.drafter_id:
            raise ContractApproverIsDrafter(f"{ctx.actor_id!r} drafted this contract and may not approve it")
        self._record(self.Approved, ctx, reason=reason)

    def sign(self, ctx: Context, *, customer_signatory: str, customer_risk_cases: Iterable[RiskCase]) -> None:
        """Sign for the bank (the actor) with the customer's signatory.

        ``customer_risk_cases`` are the customer's open risk cases. Raises
        :class:`SignatoryIsDrafter`, :class:`ContractSigningBlockedByRisk`.
        """
        self._check_status("signed", (APPROVED,))
        if ctx.actor_id == self.drafter_id:
            raise SignatoryIsDrafter(f"{ctx.actor_id!r} drafted this contract and may not sign it for the bank")
        blocking = [str(c.id) for c in customer_risk_cases if c.blocks_business]
        if blocking:
            raise ContractSigningBlockedByRisk(
                f"customer {self.customer_id} has open risk case(s) {', '.join(blocking)} "
                "whose response is avoid; no business may be signed with this customer"
            )
        self._record(self.Signed, ctx, customer_signatory=require_text(customer_signatory, "customer_signatory"))

    def terminate(self, ctx: Context, *, reason: str | None) -> None:
        """Terminate a signed contract, with the reason."""
        self._check_status("terminated", (SIGNED,))
        self._record(self.Terminated, ctx, reason=require_reason(reason, "terminate a contract"))

    def _check_status(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition("contract", action, self.status, allowed)

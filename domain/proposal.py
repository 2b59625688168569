"""Proposal: the cooperation offer negotiated with a customer (measures §2.4).

Lifecycle::

    draft -(submit)-> submitted -(approve)-> approved -(present)-> presented
    submitted -(return)-> returned -(revise)-> draft
    presented -(accept)-> accepted | -(decline)-> declined | -(revise)-> draft
    any open state -(withdraw)-> withdrawn

Every revision is kept and numbered (§2.4 step 2); the approver (or returner)
may not be the drafter (maker-checker).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.base import (
    Context,
    IllegalTransition,
    InvalidValue,
    MakerCheckerViolation,
    TuohuAggregate,
    require_reason,
    require_text,
)

DRAFT = "draft"
SUBMITTED = "submitted"
APPROVED = "approved"
RETURNED = "returned"
PRESENTED = "presented"
ACCEPTED = "accepted"
DECLINED = "declined"
WITHDRAWN = "withdrawn"
OPEN = (DRAFT, SUBMITTED, APPROVED, RETURNED, PRESENTED)


class ApproverIsDrafter(MakerCheckerViolation):
    """The proposal's drafter tried to approve or return it (four-eyes rule, §2.4)."""

    code = "proposal_approver_is_drafter"


class Proposal(TuohuAggregate):
    """A priced offer of products with the parties' rights and obligations."""

    TOPIC = "tuohu:Proposal"

    class Drafted(TuohuAggregate.Created):
        """Content, products, pricing terms, rights and obligations (§2.4 step 1)."""

        customer_id: UUID
        products: list[str]
        pricing_terms: dict[str, Any]
        rights_and_obligations: str

        def apply(self, proposal: Proposal) -> None:
            proposal.customer_id = self.customer_id
            proposal.drafter_id = self.actor_id
            proposal.status = DRAFT
            proposal.revisions = [
                {
                    "revision": 1,
                    "products": list(self.products),
                    "pricing_terms": dict(self.pricing_terms),
                    "rights_and_obligations": self.rights_and_obligations,
                }
            ]

    class Revised(TuohuAggregate.Event):
        """A new numbered revision; earlier ones are kept (§2.4 step 2)."""

        revision: int
        products: list[str]
        pricing_terms: dict[str, Any]
        rights_and_obligations: str

        def apply(self, proposal: Proposal) -> None:
            proposal.revisions.append(
                {
                    "revision": self.revision,
                    "products": list(self.products),
                    "pricing_terms": dict(self.pricing_terms),
                    "rights_and_obligations": self.rights_and_obligations,
                }
            )
            proposal.status = DRAFT

    class Submitted(TuohuAggregate.Event):
        """Submitted for internal approval."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = SUBMITTED

    class Approved(TuohuAggregate.Event):
        """Approved by someone other than the drafter."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = APPROVED
            proposal.approver_id = self.actor_id

    class Returned(TuohuAggregate.Event):
        """Returned to the drafter with the reason."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = RETURNED

    class Presented(TuohuAggregate.Event):
        """Presented to the customer (§2.4 step 2)."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = PRESENTED

    class AcceptedByCustomer(TuohuAggregate.Event):
        """The customer accepted the presented revision."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = ACCEPTED

    class DeclinedByCustomer(TuohuAggregate.Event):
        """The customer declined, with the reason."""

        revision: int

        def apply(self, proposal: Proposal) -> None:
            proposal.status = DECLINED

    class Withdrawn(TuohuAggregate.Event):
        """The bank withdrew the proposal, with the reason."""

        def apply(self, proposal: Proposal) -> None:
            proposal.status = WITHDRAWN

    # ------------------------------------------------------------------ state

    @property
    def current(self) -> dict[str, Any]:
        """The latest revision: ``{"revision", "products", "pricing_terms", "rights_and_obligations"}``."""
        return self.revisions[-1]

    @property
    def revision(self) -> int:
        return int(self.current["revision"])

    # ------------------------------------------------------------------ commands

    @classmethod
    def draft(
        cls, ctx: Context, *, customer_id: UUID, products: list[str], pricing_terms: dict[str, Any],
        rights_and_obligations: str, proposal_id: UUID | None = None,
    ) -> Proposal:
        """Draft a proposal (§2.4 step 1). Raises :class:`InvalidValue`."""
        return cls._start(cls.Drafted, ctx, id=proposal_id, customer_id=customer_id,
                          **_content(products, pricing_terms, rights_and_obligations))

    def revise(
        self, ctx: Context, *, products: list[str], pricing_terms: dict[str, Any],
        rights_and_obligations: str, reason: str | None,
    ) -> None:
        """Record a new revision, with the reason (§2.4 step 2)."""
        self._check_status("revised", (DRAFT, RETURNED, PRESENTED))
        self._record(self.Revised, ctx, reason=require_reason(reason, "revise a proposal"),
                     revision=self.revision + 1, **_content(products, pricing_terms, rights_and_obligations))

    def submit(self, ctx: Context) -> None:
        """Submit the current revision for approval."""
        self._check_status("submitted", (DRAFT,))
        self._record(self.Submitted, ctx, revision=self.revision)

    def approve(self, ctx: Context, *, reason: str | None = None) -> None:
        """Approve (maker-checker: not the drafter). Raises :class:`ApproverIsDrafter`."""
        self._check_status("approved", (SUBMITTED,))
        self._check_not_drafter(ctx, "approve")
        self._record(self.Approved, ctx, reason=reason, revision=self.revision)

    def return_for_revision(self, ctx: Context, *, reason: str | None) -> None:
        """Return to the drafter with the reason (maker-checker: not the drafter)."""
        self._check_status("returned", (SUBMITTED,))
        self._check_not_drafter(ctx, "return")
        self._record(self.Returned, ctx, reason=require_reason(reason, "return a proposal"), revision=self.revision)

    def present(self, ctx: Context) -> None:
        """Present the approved revision to the customer."""
        self._check_status("presented", (APPROVED,))
        self._record(self.Presented, ctx, revision=self.revision)

    def accept(self, ctx: Context, *, reason: str | None = None) -> None:
        """Record the customer's acceptance of the presented revision."""
        self._check_status("accepted", (PRESENTED,))
        self._record(self.AcceptedByCustomer, ctx, reason=reason, revision=self.revision)

    def decline(self, ctx: Context, *, reason: str | None) -> None:
        """Record the customer's refusal, with the reason."""
        self._check_status("declined", (PRESENTED,))
        self._record(self.DeclinedByCustomer, ctx, reason=require_reason(reason, "record a declined proposal"),
                     revision=self.revision)

    def withdraw(self, ctx: Context, *, reason: str | None) -> None:
        """Withdraw an open proposal, with the reason."""
        self._check_status("withdrawn", OPEN)
        self._record(self.Withdrawn, ctx, reason=require_reason(reason, "withdraw a proposal"))

    def _check_status(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition("proposal", action, self.status, allowed)

    def _check_not_drafter(self, ctx: Context, action: str) -> None:
        if ctx.actor_id == self.drafter_id:
            raise ApproverIsDrafter(f"{ctx.actor_id!r} drafted this proposal and may not {action} it")


def _content(products: list[str], pricing_terms: dict[str, Any], rights_and_obligations: str) -> dict[str, Any]:
    if not products:
        raise InvalidValue("products", "at least one product is required")
    if not isinstance(pricing_terms, dict):
        raise InvalidValue("pricing_terms", "must be an object of term -> value")
    return {
        "products": [require_text(p, "products") for p in products],
        "pricing_terms": dict(pricing_terms),
        "rights_and_obligations": require_text(rights_and_obligations, "rights_and_obligations"),
    }
